"""Handlers for the topics that belong to the shop itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.events.payloads import instant
from application.ports import Clock, UnitOfWork
from application.tasks import OUTLIVES_UNINSTALL
from domain.events import WebhookEvent


class HandleAppUninstalled:
    """Mark the shop uninstalled, erase its token (already revoked by Shopify) and cancel
    its waiting jobs. Data stays until `shop/redact`, since the merchant may come back."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        shop = await uow.shops.get(event.shop_id, for_update=True)
        if shop is None:
            return
        # Deliveries arrive out of order: an uninstall that fired before the latest
        # install must not undo it.
        if event.triggered_at and shop.installed_at and event.triggered_at < shop.installed_at:
            return
        shop.mark_uninstalled(self._clock.now())
        await uow.shops.save(shop)
        await uow.credentials.erase()
        cancelled = await uow.jobs.cancel_for_shop(
            shop.id, sparing=[task.qualified for task in OUTLIVES_UNINSTALL]
        )
        await uow.audit.record(
            action="shop.uninstalled", actor="shopify", details={"jobs_cancelled": cancelled}
        )


class HandleShopUpdate:
    """Keep the shop's name and locale (currency, timezone, country) in step with Shopify."""

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        shop = await uow.shops.get(event.shop_id, for_update=True)
        if shop is None:
            return
        shop.refresh(
            name=payload.get("name"),
            currency=payload.get("currency"),
            time_zone=payload.get("iana_timezone"),
            country=payload.get("country_code"),
            as_of=instant(payload.get("updated_at")) or event.triggered_at,
        )
        await uow.shops.save(shop)
