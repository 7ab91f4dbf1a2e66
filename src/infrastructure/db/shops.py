"""Shops: table, repository and the mapping to the domain entity."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    delete,
    false,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from application.ports import Cipher
from domain.shops import Shop, ShopCredentials, ShopStatus

# A shop's own sending number routes replies to it: no two shops may claim one number.
SENDER_NUMBER = "(settings #>> '{messaging,sender}')"


class ShopModel(UUIDv7AuditBase):
    __tablename__ = "shops"
    __table_args__ = (
        Index(
            "uq_shops_sms_number",
            text(SENDER_NUMBER),
            unique=True,
            postgresql_where=text(f"{SENDER_NUMBER} ~ '^[+][0-9]+$'"),
        ),
    )

    domain: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    country: Mapped[str] = mapped_column(String(2), default="US")
    status: Mapped[str] = mapped_column(String(16), default=ShopStatus.INSTALLED.value)
    installed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    uninstalled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    settings: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    shopify_updated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class _ShopModels(SQLAlchemyAsyncRepository[ShopModel]):
    model_type = ShopModel


class SqlShopRepository:
    """Shops as the current transaction may see them (RLS limits a tenant to its own)."""

    def __init__(self, session: AsyncSession) -> None:
        self._rows = _ShopModels(session=session, auto_commit=False, auto_expunge=False)

    async def get(self, shop_id: uuid.UUID, *, for_update: bool = False) -> Shop | None:
        # Fresh even when the session still holds the row from an earlier read: a re-read
        # must see what other transactions have committed since.
        query = (
            select(ShopModel)
            .where(ShopModel.id == shop_id)
            .execution_options(populate_existing=True)
        )
        if for_update:
            # NO KEY: rows that reference the shop (inserted by every tenant write) only
            # take a key-share lock, which this one leaves free.
            query = query.with_for_update(key_share=True)
        row = (await self._rows.session.scalars(query)).first()
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

    async def save(self, shop: Shop) -> None:
        await self._rows.session.execute(
            update(ShopModel)
            .where(ShopModel.id == shop.id)
            .values(
                name=shop.name,
                currency=shop.currency,
                timezone=shop.timezone,
                country=shop.country,
                status=shop.status.value,
                installed_at=shop.installed_at,
                uninstalled_at=shop.uninstalled_at,
                settings=dict(shop.settings),
                shopify_updated_at=shop.shopify_updated_at,
                updated_at=func.now(),
            )
        )

    async def delete(self, shop_id: uuid.UUID) -> bool:
        # Every tenant table references shops with ON DELETE CASCADE; OAuth nonces name
        # the shop by domain only, so they go explicitly.
        domain = await self._rows.session.scalar(
            delete(ShopModel).where(ShopModel.id == shop_id).returning(ShopModel.domain)
        )
        if domain is None:
            return False
        await self._rows.session.execute(
            delete(OAuthStateModel).where(OAuthStateModel.shop_domain == domain)
        )
        return True


class ShopCredentialModel(DefaultBase):
    __tablename__ = "shop_credentials"

    shop_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    access_token: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    refresh_token: Mapped[str | None] = mapped_column(Text)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    custom_app: Mapped[bool] = mapped_column(Boolean, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )


class SqlCredentialStore:
    """Tokens are sealed with the shop id as associated data: a row copied onto another
    shop does not decrypt."""

    def __init__(self, session: AsyncSession, shop_id: uuid.UUID | None, cipher: Cipher) -> None:
        self._session = session
        self._shop_id = shop_id
        self._cipher = cipher

    def _context(self, field: str) -> str:
        return f"shop_credentials.{field}:{self._shop_id}"

    async def get(self, *, for_update: bool = False) -> ShopCredentials | None:
        query = select(ShopCredentialModel).where(ShopCredentialModel.shop_id == self._shop_id)
        row = (
            await self._session.scalars(query.with_for_update() if for_update else query)
        ).first()
        if row is None:
            return None
        return ShopCredentials(
            access_token=self._cipher.decrypt(row.access_token, context=self._context("access")),
            scopes=tuple(s for s in row.scopes.split(",") if s),
            access_expires_at=row.access_expires_at,
            refresh_token=(
                self._cipher.decrypt(row.refresh_token, context=self._context("refresh"))
                if row.refresh_token
                else None
            ),
            refresh_expires_at=row.refresh_expires_at,
            custom_app=row.custom_app,
        )

    async def save(self, credentials: ShopCredentials) -> None:
        values = {
            "access_token": self._cipher.encrypt(
                credentials.access_token, context=self._context("access")
            ),
            "scopes": ",".join(credentials.scopes),
            "access_expires_at": credentials.access_expires_at,
            "refresh_token": (
                self._cipher.encrypt(credentials.refresh_token, context=self._context("refresh"))
                if credentials.refresh_token
                else None
            ),
            "refresh_expires_at": credentials.refresh_expires_at,
            "custom_app": credentials.custom_app,
            "updated_at": func.now(),
        }
        await self._session.execute(
            pg_insert(ShopCredentialModel)
            .values(shop_id=self._shop_id, **values)
            .on_conflict_do_update(index_elements=["shop_id"], set_=values)
        )

    async def erase(self) -> None:
        await self._session.execute(
            delete(ShopCredentialModel).where(ShopCredentialModel.shop_id == self._shop_id)
        )


class OAuthStateModel(DefaultBase):
    __tablename__ = "oauth_states"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class SqlOAuthStates:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, nonce: str, shop_domain: str, expires_at: datetime) -> None:
        # States nobody came back for go as new ones arrive, not only when one is used.
        await self._session.execute(
            delete(OAuthStateModel).where(OAuthStateModel.expires_at < func.now())
        )
        await self._session.execute(
            insert(OAuthStateModel).values(
                nonce=nonce, shop_domain=shop_domain, expires_at=expires_at
            )
        )

    async def consume(self, nonce: str, now: datetime) -> str | None:
        # Deleting is the single use: a replayed callback finds nothing.
        shop = await self._session.scalar(
            delete(OAuthStateModel)
            .where(OAuthStateModel.nonce == nonce, OAuthStateModel.expires_at > now)
            .returning(OAuthStateModel.shop_domain)
        )
        await self._session.execute(
            delete(OAuthStateModel).where(OAuthStateModel.expires_at <= now)
        )
        return shop


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
        shopify_updated_at=shop.shopify_updated_at,
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
        shopify_updated_at=row.shopify_updated_at,
    )
