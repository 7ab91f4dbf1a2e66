"""The webhook inbox: one row per delivery, payload encrypted, unique per webhook id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import Delete, Select, Update
from uuid_utils.compat import uuid7

from application.ports import Admission, Cipher, InboxEntry, JobRequest
from domain.events import EventStatus, WebhookEvent
from infrastructure.queue.defer import encode_args
from infrastructure.telemetry.logging import redact

_Q = TypeVar("_Q", Select, Update, Delete)
MAX_ERROR_CHARS = 2000
_UNHANDLED = (EventStatus.RECEIVED.value, EventStatus.FAILED.value)

# Webhook ingress: one statement per batch of deliveries (migration 0013 has the function).
_ADMIT = """
    SELECT event_id, shop_id, stored FROM blossom_admit_webhooks(
        $1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
        $7::text[], $8::text[], $9::text[]::jsonb[], $10, $11, $12, $13
    )
"""


class WebhookEventModel(UUIDv7Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("shop_id", "webhook_id", name="uq_webhook_events_shop_webhook"),
        Index("ix_webhook_events_shop_status", "shop_id", "status", "received_at"),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(100))
    webhook_id: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(255))
    triggered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    api_version: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


def _payload_context(event_id: uuid.UUID) -> str:
    return f"webhook_events.payload:{event_id}"


class SqlWebhookIntake:
    """Stores ingress batches: one statement, which is its own transaction (one round trip).

    The statement goes to the pooled connection's asyncpg driver directly: outside a
    transaction it commits on its own, and SQLAlchemy's execution path cost ~16 µs of CPU
    per delivery here, about 7% of what ingress spends on one (bench/webhook_ingress.py).
    """

    def __init__(self, engine: AsyncEngine, cipher: Cipher) -> None:
        self._engine = engine
        self._cipher = cipher

    async def admit(self, entries: Sequence[InboxEntry], job: JobRequest) -> list[Admission]:
        ids = [uuid7() for _ in entries]
        deliveries = [entry.delivery for entry in entries]
        payloads = [
            self._cipher.encrypt(
                d.payload.decode("utf-8", errors="replace"), context=_payload_context(id_)
            )
            for d, id_ in zip(deliveries, ids, strict=True)
        ]
        async with self._engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            rows = await driver.fetch(
                _ADMIT,
                ids,
                [d.shop_domain for d in deliveries],
                [d.topic for d in deliveries],
                [d.webhook_id for d in deliveries],
                [d.event_id for d in deliveries],
                [d.triggered_at for d in deliveries],
                [d.api_version for d in deliveries],
                payloads,
                [encode_args(job.args, entry.origin) for entry in entries],
                EventStatus.RECEIVED.value,
                job.queue,
                job.task,
                job.priority,
            )
        return [
            Admission(shop_id=row["shop_id"], event_id=row["event_id"] if row["stored"] else None)
            for row in rows
        ]


class SqlWebhookInbox:
    def __init__(self, session: AsyncSession, shop_id: uuid.UUID | None, cipher: Cipher) -> None:
        self._session = session
        self._shop_id = shop_id
        self._cipher = cipher

    async def get(
        self, event_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[WebhookEvent, bytes] | None:
        query = self._scoped(select(WebhookEventModel), event_id)
        row = (
            await self._session.scalars(query.with_for_update() if for_update else query)
        ).first()
        if row is None:
            return None
        payload = self._cipher.decrypt(row.payload, context=_payload_context(row.id)).encode()
        return _to_domain(row), payload

    def _scoped(self, query: _Q, event_id: uuid.UUID | None = None) -> _Q:
        """Every query names its shop; only the maintenance path (no shop) spans shops."""
        if self._shop_id is not None:
            query = query.where(WebhookEventModel.shop_id == self._shop_id)
        if event_id is not None:
            query = query.where(WebhookEventModel.id == event_id)
        return query

    async def mark(
        self, event_id: uuid.UUID, status: EventStatus, *, error: str | None = None
    ) -> None:
        finished = status in (EventStatus.PROCESSED, EventStatus.IGNORED)
        query = self._scoped(update(WebhookEventModel), event_id)
        if status is EventStatus.FAILED:
            # A failing attempt must not mark failed what a concurrent one has handled.
            query = query.where(WebhookEventModel.status.in_(_UNHANDLED))
        await self._session.execute(
            query.values(
                status=status.value,
                # A handler's error can quote the payload's phone numbers and e-mail
                # addresses, and unlike the payload this column is not encrypted.
                error=None if error is None else redact(error)[:MAX_ERROR_CHARS],
                attempts=WebhookEventModel.attempts + 1,
                processed_at=func.now() if finished else None,
            )
        )

    async def find(
        self, *, status: EventStatus | None, topic: str | None, limit: int
    ) -> list[WebhookEvent]:
        query = self._scoped(select(WebhookEventModel)).order_by(
            WebhookEventModel.received_at.desc()
        )
        if status is not None:
            query = query.where(WebhookEventModel.status == status.value)
        if topic is not None:
            query = query.where(WebhookEventModel.topic == topic)
        return [_to_domain(row) for row in await self._session.scalars(query.limit(limit))]

    async def reset_many(
        self, event_ids: Sequence[uuid.UUID], *, only: EventStatus | None = None
    ) -> list[uuid.UUID]:
        if not event_ids:
            return []
        query = self._scoped(update(WebhookEventModel)).where(WebhookEventModel.id.in_(event_ids))
        if only is not None:
            # Checked by the UPDATE itself, which sees the row as a concurrent attempt
            # left it: the listing it came from may be stale by now.
            query = query.where(WebhookEventModel.status == only.value)
        result = await self._session.execute(
            query.values(
                status=EventStatus.RECEIVED.value, error=None, processed_at=None
            ).returning(WebhookEventModel.id)
        )
        return list(result.scalars())

    async def prune(self, *, handled_before: datetime) -> int:
        handled = (EventStatus.PROCESSED.value, EventStatus.IGNORED.value)
        result = await self._session.execute(
            self._scoped(delete(WebhookEventModel)).where(
                WebhookEventModel.status.in_(handled),
                WebhookEventModel.processed_at < handled_before,
            )
        )
        return result.rowcount

    async def payloads(
        self, *, after: uuid.UUID | None, limit: int
    ) -> list[tuple[WebhookEvent, bytes]]:
        query = self._scoped(select(WebhookEventModel)).order_by(WebhookEventModel.id)
        if after is not None:
            query = query.where(WebhookEventModel.id > after)
        return [
            (
                _to_domain(row),
                self._cipher.decrypt(row.payload, context=_payload_context(row.id)).encode(),
            )
            for row in await self._session.scalars(query.limit(limit))
        ]

    async def delete(self, event_ids: Sequence[uuid.UUID]) -> int:
        if not event_ids:
            return 0
        result = await self._session.execute(
            self._scoped(delete(WebhookEventModel)).where(WebhookEventModel.id.in_(event_ids))
        )
        return result.rowcount


def _to_domain(row: WebhookEventModel) -> WebhookEvent:
    return WebhookEvent(
        id=row.id,
        shop_id=row.shop_id,
        topic=row.topic,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        triggered_at=row.triggered_at,
        api_version=row.api_version,
        status=EventStatus(row.status),
        attempts=row.attempts,
        error=row.error,
        received_at=row.received_at,
        processed_at=row.processed_at,
    )
