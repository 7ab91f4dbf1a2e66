"""Shops: table, repository and the mapping to the domain entity."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain.shops import Shop, ShopStatus


class ShopModel(UUIDv7AuditBase):
    __tablename__ = "shops"

    domain: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    country: Mapped[str] = mapped_column(String(2), default="US")
    status: Mapped[str] = mapped_column(String(16), default=ShopStatus.INSTALLED.value)
    installed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    uninstalled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    settings: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


class _ShopModels(SQLAlchemyAsyncRepository[ShopModel]):
    model_type = ShopModel


class SqlShopRepository:
    """Shops as the current transaction may see them (RLS limits a tenant to its own)."""

    def __init__(self, session: AsyncSession) -> None:
        self._rows = _ShopModels(session=session, auto_commit=False, auto_expunge=False)

    async def get(self, shop_id: uuid.UUID) -> Shop | None:
        row = await self._rows.get_one_or_none(ShopModel.id == shop_id)
        return _to_domain(row) if row else None

    async def get_by_domain(self, domain: str) -> Shop | None:
        row = await self._rows.get_one_or_none(ShopModel.domain == domain)
        return _to_domain(row) if row else None

    async def add(self, shop: Shop) -> Shop:
        row = await self._rows.add(_to_row(shop))
        return _to_domain(row)

    async def list(self) -> list[Shop]:
        rows = await self._rows.session.scalars(select(ShopModel).order_by(ShopModel.domain))
        return [_to_domain(row) for row in rows]


def _to_row(shop: Shop) -> ShopModel:
    return ShopModel(
        id=shop.id,
        domain=shop.domain,
        name=shop.name,
        currency=shop.currency,
        timezone=shop.timezone,
        country=shop.country,
        status=shop.status.value,
        installed_at=shop.installed_at,
        uninstalled_at=shop.uninstalled_at,
        settings=dict(shop.settings),
    )


def _to_domain(row: ShopModel) -> Shop:
    return Shop(
        id=row.id,
        domain=row.domain,
        name=row.name,
        currency=row.currency,
        timezone=row.timezone,
        country=row.country,
        status=ShopStatus(row.status),
        installed_at=row.installed_at,
        uninstalled_at=row.uninstalled_at,
        settings=dict(row.settings or {}),
    )
