"""Audit log: who did what to which shop. Append-only; platform actions have no shop."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import ForeignKey, Index, String, func, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column


class AuditLogModel(UUIDv7Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_shop_created", "shop_id", "created_at"),)

    shop_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )


class SqlAuditLog:
    def __init__(self, session: AsyncSession, shop_id: uuid.UUID | None) -> None:
        self._session = session
        self._shop_id = shop_id

    async def record(
        self,
        *,
        action: str,
        actor: str,
        subject: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        await self._session.execute(
            insert(AuditLogModel).values(
                shop_id=self._shop_id,
                action=action,
                actor=actor,
                subject=subject,
                details=dict(details or {}),
            )
        )
