"""Delivery reports held, shop-less, until a message matches them (sms.md §1: store first).

A report can outrun the send it describes: it may name only Mitto's id, which is saved
after Mitto answers the send. The callback runs as `blossom_app` and may only add rows
here (the table holds other shops' payloads); the maintenance sweep reads them back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Index, String, Text, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from application.ports import Cipher, DeliveryReportIn, HeldReport
from domain.messages import MessageStatus

# Longer ids and references match no message (messages keep ids of this length and
# references are our UUIDs), so they are not kept as keys; the payload still has them.
KEY_LENGTH = 100
WORD_LENGTH = 64


class UnmatchedReportModel(UUIDv7Base):
    __tablename__ = "unmatched_reports"
    __table_args__ = (
        Index(
            "uq_unmatched_reports_provider_status",
            "provider_id",
            "status",
            unique=True,
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
        Index("ix_unmatched_reports_received", "received_at", "id"),
    )

    provider_id: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    reference: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    status: Mapped[str] = mapped_column(String(32))
    provider_status: Mapped[str | None] = mapped_column(String(WORD_LENGTH))
    error_code: Mapped[str | None] = mapped_column(String(WORD_LENGTH))
    payload: Mapped[str] = mapped_column(Text)  # encrypted
    reported_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


# The callback's role may insert here but not read, so neither RETURNING nor a conflict
# target (both need SELECT); the only unique key a new row can collide on is
# (provider_id, status).
_HOLD = text(
    "INSERT INTO unmatched_reports (id, provider_id, reference, status, provider_status,"
    " error_code, payload, reported_at, received_at) VALUES (:id, :provider_id, :reference,"
    " :status, :provider_status, :error_code, :payload, :reported_at, :now)"
    " ON CONFLICT DO NOTHING"
)

_REMOVE = text("DELETE FROM unmatched_reports WHERE id = ANY(CAST(:ids AS uuid[]))")


class SqlUnmatchedReports:
    def __init__(self, session: AsyncSession, cipher: Cipher) -> None:
        self._session = session
        self._cipher = cipher

    async def hold(self, report: DeliveryReportIn, status: MessageStatus, now: datetime) -> bool:
        report_id = uuid7()
        result = await self._session.execute(
            _HOLD,
            {
                "id": report_id,
                "provider_id": _key(report.provider_id),
                "reference": _key(report.reference),
                "status": status.value,
                "provider_status": _word(report.status_word),
                "error_code": _word(report.error_code),
                "payload": self._cipher.encrypt(report.raw, context=_context(report_id)),
                "reported_at": report.reported_at,
                "now": now,
            },
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def oldest(self, limit: int) -> list[HeldReport]:
        rows = await self._session.scalars(
            select(UnmatchedReportModel)
            .order_by(UnmatchedReportModel.received_at, UnmatchedReportModel.id)
            .limit(limit)
        )
        return [
            HeldReport(
                r.id,
                DeliveryReportIn(
                    provider_id=r.provider_id,
                    reference=r.reference,
                    status_word=r.provider_status,
                    error_code=r.error_code,
                    reported_at=r.reported_at,
                    raw=self._cipher.decrypt(r.payload, context=_context(r.id)),
                ),
            )
            for r in rows
        ]

    async def remove(self, ids: Sequence[uuid.UUID]) -> None:
        await self._session.execute(_REMOVE, {"ids": list(ids)})

    async def drop_received_before(self, before: datetime) -> int:
        result = await self._session.execute(
            delete(UnmatchedReportModel).where(UnmatchedReportModel.received_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _key(value: str | None) -> str | None:
    return value if value is not None and len(value) <= KEY_LENGTH else None


def _word(value: str | None) -> str | None:
    return (value or "")[:WORD_LENGTH] or None


def _context(report_id: uuid.UUID) -> str:
    return f"unmatched_reports:{report_id}"
