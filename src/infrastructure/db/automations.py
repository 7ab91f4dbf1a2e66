"""Back-in-stock requests, stored now and sent by the automations when stock returns."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from application.ports import BackInStockEntry


class BackInStockRequestModel(UUIDv7Base):
    __tablename__ = "back_in_stock_requests"
    __table_args__ = (
        Index(
            "uq_back_in_stock_waiting",
            "shop_id",
            "variant_id",
            "contact_id",
            unique=True,
            postgresql_where=text("notified_at IS NULL"),
        ),
        # With the shop: a key on the id alone is checked past row-level security (0019).
        ForeignKeyConstraint(
            ["shop_id", "contact_id"],
            ["contacts.shop_id", "contacts.id"],
            name="fk_back_in_stock_requests_shop_contact",
            ondelete="CASCADE",
        ),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(GUID(length=16))
    variant_id: Mapped[int] = mapped_column(BigInteger)
    wording: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )
    notified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


_ADD = text(
    """
    INSERT INTO back_in_stock_requests (id, shop_id, contact_id, variant_id, wording)
    VALUES (:id, :shop_id, :contact_id, :variant_id, :wording)
    ON CONFLICT (shop_id, variant_id, contact_id) WHERE notified_at IS NULL DO NOTHING
    """
)


class SqlBackInStock:
    def __init__(self, session: AsyncSession, shop_id: uuid.UUID | None) -> None:
        self._session = session
        self._shop_id = shop_id

    async def add(self, contact_id: uuid.UUID, variant_id: int, wording: str) -> bool:
        """False when this contact already waits for this variant."""
        result = await self._session.execute(
            _ADD,
            {
                "id": uuid7(),
                "shop_id": self._shop_id,
                "contact_id": contact_id,
                "variant_id": variant_id,
                "wording": wording,
            },
        )
        return result.rowcount == 1

    async def waiting(self, variant_id: int) -> list[uuid.UUID]:
        query = select(BackInStockRequestModel.contact_id).where(
            BackInStockRequestModel.shop_id == self._shop_id,
            BackInStockRequestModel.variant_id == variant_id,
            BackInStockRequestModel.notified_at.is_(None),
        )
        return list(await self._session.scalars(query))

    async def of_contacts(self, contact_ids: Sequence[uuid.UUID]) -> list[BackInStockEntry]:
        model = BackInStockRequestModel
        query = (
            select(model)
            .where(model.shop_id == self._shop_id, model.contact_id.in_(contact_ids))
            .order_by(model.created_at, model.id)
        )
        return [
            BackInStockEntry(r.contact_id, r.variant_id, r.wording, r.created_at, r.notified_at)
            for r in await self._session.scalars(query)
        ]
