"""`/api/v1/shop`: the authenticated shop's own settings."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, get

from domain.shops import Shop
from interfaces.http.session import CurrentShop


class ShopView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    domain: str
    name: str
    currency: str
    timezone: str
    country: str
    installed: bool

    @classmethod
    def of(cls, shop: Shop) -> ShopView:
        return cls(
            id=shop.id,
            domain=shop.domain,
            name=shop.name,
            currency=shop.currency,
            timezone=shop.timezone,
            country=shop.country,
            installed=shop.installed,
        )


class ShopController(Controller):
    path = "/shop"
    tags = ["shop"]

    @get("/", summary="The shop the session token belongs to")
    async def get_shop(self, shop: CurrentShop) -> ShopView:
        return ShopView.of(shop)
