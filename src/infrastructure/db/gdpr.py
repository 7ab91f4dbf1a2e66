"""GDPR requests: subject and export bundle sealed per request, like every other PII."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, String, Text, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import Select, Update

from application.ports import Cipher
from domain.gdpr import GdprRequest, RequestKind, RequestSource, RequestStatus, Subject

_Q = TypeVar("_Q", Select[Any], Update)


class GdprRequestModel(UUIDv7Base):
    __tablename__ = "gdpr_requests"
    __table_args__ = (Index("ix_gdpr_requests_shop_status_due", "shop_id", "status", "due_at"),)

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    shopify_request_id: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Deferred: lists and status changes never load (or decrypt) a whole export.
    bundle: Mapped[str | None] = mapped_column(Text, deferred=True)
    error: Mapped[str | None] = mapped_column(Text)


_HAS_BUNDLE = GdprRequestModel.bundle.is_not(None).label("has_bundle")


class SqlGdprRequests:
    """Scoped to the unit of work's shop; only the maintenance path (no shop) spans shops."""

    def __init__(self, session: AsyncSession, shop_id: uuid.UUID | None, cipher: Cipher) -> None:
        self._session = session
        self._shop_id = shop_id
        self._cipher = cipher

    def _scoped(self, query: _Q) -> _Q:
        if self._shop_id is not None:
            query = query.where(GdprRequestModel.shop_id == self._shop_id)
        return query

    def _select(self) -> Select[Any]:
        # Rows are changed with UPDATE statements, so a read must not trust the identity map.
        query = select(GdprRequestModel, _HAS_BUNDLE).execution_options(populate_existing=True)
        return self._scoped(query)

    async def add(self, request: GdprRequest) -> None:
        await self._session.execute(
            insert(GdprRequestModel).values(
                id=request.id,
                shop_id=request.shop_id,
                kind=request.kind.value,
                status=request.status.value,
                source=request.source.value,
                shopify_request_id=request.shopify_request_id,
                subject=self._seal_subject(request.id, request.subject),
                received_at=request.received_at,
                due_at=request.due_at,
                fulfilled_at=request.fulfilled_at,
                error=request.error,
            )
        )

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> GdprRequest | None:
        query = self._select().where(GdprRequestModel.id == request_id)
        if for_update:
            query = query.with_for_update(of=GdprRequestModel)
        row = (await self._session.execute(query)).first()
        return self._to_domain(*row) if row else None

    async def save(self, request: GdprRequest) -> None:
        await self._session.execute(
            self._scoped(update(GdprRequestModel))
            .where(GdprRequestModel.id == request.id)
            .values(
                status=request.status.value,
                fulfilled_at=request.fulfilled_at,
                error=request.error,
            )
        )

    async def store_bundle(self, request_id: uuid.UUID, bundle: str) -> None:
        await self._session.execute(
            self._scoped(update(GdprRequestModel))
            .where(GdprRequestModel.id == request_id)
            .values(bundle=self._cipher.encrypt(bundle, context=_context("bundle", request_id)))
        )

    async def bundle(self, request_id: uuid.UUID) -> str | None:
        sealed = await self._session.scalar(
            self._scoped(select(GdprRequestModel.bundle)).where(GdprRequestModel.id == request_id)
        )
        if sealed is None:
            return None
        return self._cipher.decrypt(sealed, context=_context("bundle", request_id))

    async def page(self, *, limit: int, before: uuid.UUID | None = None) -> list[GdprRequest]:
        # UUIDv7 ids are time-ordered: newest first by id is newest received first.
        query = self._select().order_by(GdprRequestModel.id.desc()).limit(limit)
        if before is not None:
            query = query.where(GdprRequestModel.id < before)
        return [self._to_domain(*row) for row in await self._session.execute(query)]

    async def pending(self, *, received_before: datetime, limit: int) -> list[GdprRequest]:
        query = (
            self._select()
            .where(
                GdprRequestModel.status == RequestStatus.PENDING.value,
                GdprRequestModel.received_at < received_before,
            )
            .order_by(GdprRequestModel.due_at)
            .limit(limit)
        )
        return [self._to_domain(*row) for row in await self._session.execute(query)]

    async def count_overdue(self, now: datetime) -> int:
        query = self._scoped(select(func.count()).select_from(GdprRequestModel)).where(
            GdprRequestModel.status != RequestStatus.FULFILLED.value,
            GdprRequestModel.due_at < now,
        )
        return int(await self._session.scalar(query) or 0)

    async def erase_personal_data(self, request_ids: Sequence[uuid.UUID]) -> None:
        # Each subject is sealed under its own request id, so each row gets its own value.
        for request_id in request_ids:
            await self._session.execute(
                self._scoped(update(GdprRequestModel))
                .where(GdprRequestModel.id == request_id)
                .values(subject=self._seal_subject(request_id, Subject()), bundle=None)
            )

    def _seal_subject(self, request_id: uuid.UUID, subject: Subject) -> str:
        plain = json.dumps(
            {
                "shopify_customer_id": subject.shopify_customer_id,
                "phone": subject.phone,
                "email": subject.email,
                "orders": list(subject.orders),
            },
            separators=(",", ":"),
        )
        return self._cipher.encrypt(plain, context=_context("subject", request_id))

    def _to_domain(self, row: GdprRequestModel, has_bundle: bool) -> GdprRequest:
        subject = json.loads(self._cipher.decrypt(row.subject, context=_context("subject", row.id)))
        return GdprRequest(
            id=row.id,
            shop_id=row.shop_id,
            kind=RequestKind(row.kind),
            source=RequestSource(row.source),
            subject=Subject(
                shopify_customer_id=subject.get("shopify_customer_id"),
                phone=subject.get("phone"),
                email=subject.get("email"),
                orders=tuple(subject.get("orders") or ()),
            ),
            received_at=row.received_at,
            due_at=row.due_at,
            status=RequestStatus(row.status),
            shopify_request_id=row.shopify_request_id,
            fulfilled_at=row.fulfilled_at,
            error=row.error,
            has_bundle=has_bundle,
        )


def _context(field: str, request_id: uuid.UUID) -> str:
    return f"gdpr_requests.{field}:{request_id}"
