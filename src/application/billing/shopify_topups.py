"""Buying credits through Shopify Billing: a one-time app purchase per top-up.

The credits are added when Shopify says the purchase is ACTIVE, from the merchant's
return to the app or from the `app_purchases_one_time/update` webhook, whichever comes
first; the purchase id is the ledger reference, so confirming twice adds once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from application.billing.fund_wallet import TopUpWallet
from application.ports import IdGenerator, ShopifyAdmin, ShopRef, UnitOfWork, UnitOfWorkFactory
from domain.billing import TOPUP_PACKAGES, LedgerEntry
from domain.errors import InvalidValue
from domain.events import WebhookEvent
from domain.shops import Shop

ACTIVE = "ACTIVE"


class StartTopUp:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        admin: ShopifyAdmin,
        ids: IdGenerator,
        *,
        return_url: str,
        test_mode: bool,
    ) -> None:
        self._uows = uows
        self._admin = admin
        self._ids = ids
        self._return_url = return_url
        self._test_mode = test_mode

    async def __call__(self, shop: Shop, package_id: str) -> str:
        """The confirmation URL the merchant must open to approve the charge."""
        package = TOPUP_PACKAGES.get(package_id)
        if package is None:
            raise InvalidValue(f"package must be one of {', '.join(sorted(TOPUP_PACKAGES))}")
        topup_id = self._ids.new_id()
        purchase_id, confirmation_url = await self._admin.create_one_time_purchase(
            ShopRef(shop.id, shop.domain),
            name=f"{package.credits:,} SMS credits",
            amount=package.price_decimal,
            currency=package.currency,
            return_url=f"{self._return_url}?shop={shop.domain}&topup={topup_id}",
            test=self._test_mode,
        )
        async with self._uows.for_shop(shop.id) as uow:
            await uow.wallet.record_topup(topup_id, package, purchase_id)
            await uow.audit.record(
                action="wallet.topup_started",
                actor="admin",
                subject=purchase_id,
                details={"package": package.id, "credits": package.credits},
            )
            await uow.commit()
        return confirmation_url


async def confirm_topup(
    uow: UnitOfWork, purchase_id: str, status: str | None
) -> LedgerEntry | None:
    """Credit a purchase Shopify reports ACTIVE; anything else changes nothing."""
    if status != ACTIVE:
        return None
    topup = await uow.wallet.topup(purchase_id=purchase_id)
    if topup is None:
        return None
    return await TopUpWallet()(
        uow, credits=topup.credits, reference=purchase_id, source="shopify_billing"
    )


class ReturnFromPurchase:
    """The merchant comes back from Shopify's approval page: ask Shopify, then credit."""

    def __init__(self, uows: UnitOfWorkFactory, admin: ShopifyAdmin) -> None:
        self._uows = uows
        self._admin = admin

    async def __call__(self, shop: Shop, topup_id: uuid.UUID) -> LedgerEntry | None:
        async with self._uows.for_shop(shop.id) as uow:
            topup = await uow.wallet.topup(topup_id=topup_id)
        if topup is None:
            return None
        status = await self._admin.purchase_status(ShopRef(shop.id, shop.domain), topup.purchase_id)
        async with self._uows.for_shop(shop.id) as uow:
            entry = await confirm_topup(uow, topup.purchase_id, status)
            await uow.commit()
        return entry


class HandlePurchaseUpdate:
    """`app_purchases_one_time/update`: the authenticated status of a purchase."""

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        purchase = payload.get("app_purchase_one_time") or {}
        await confirm_topup(
            uow, str(purchase.get("admin_graphql_api_id") or ""), purchase.get("status")
        )
