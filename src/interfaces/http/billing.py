"""`/api/v1/wallet`, `/api/v1/pricing`, `/api/v1/estimates`: what texts cost and what is left."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import (
    ClientException,
    NotFoundException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect

from application.billing.shopify_topups import ReturnFromPurchase
from application.errors import (
    NotInstalled,
    ShopifyRejected,
    ShopifyUnauthorized,
    ShopifyUnavailable,
)
from domain.billing import NO_WALLET, WalletBalance, estimate
from domain.messages import MessageCategory, SendingPolicy, compose
from domain.messaging import segment_text
from domain.shops import shop_domain
from interfaces.bootstrap import Container
from interfaces.http.cursors import decode_cursor, encode_cursor
from interfaces.http.session import CurrentShop

log = logging.getLogger(__name__)


class WalletView(msgspec.Struct, frozen=True):
    balance: int
    reserved: int
    low_balance_threshold: int
    low: bool
    unit: str = "credits"

    @classmethod
    def of(cls, found: WalletBalance | None) -> WalletView:
        found = found or NO_WALLET
        return cls(
            balance=found.balance,
            reserved=found.reserved,
            low_balance_threshold=found.low_balance_threshold,
            low=found.low,
        )


class TransactionView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    created_at: datetime
    kind: str
    balance_delta: int
    reserved_delta: int
    balance_after: int
    reserved_after: int
    reference: str
    reason: str
    source: str
    price_version: str | None


class TransactionPage(msgspec.Struct, frozen=True):
    items: list[TransactionView]
    next_cursor: str | None


class PricingView(msgspec.Struct, frozen=True):
    version: str
    default_credits_per_segment: int
    credits_per_segment: dict[str, int]


class EstimateIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=1600)]
    countries: Annotated[list[str], msgspec.Meta(min_length=1, max_length=50)]
    # Priced as it will be sent: queueing adds the shop's brand and opt-out footer to a
    # marketing text, which can add a segment or force UCS-2. Without it, as written.
    category: MessageCategory | None = None


class CulpritView(msgspec.Struct, frozen=True):
    char: str
    count: int
    replacement: str | None


class CountryEstimate(msgspec.Struct, frozen=True):
    country: str
    credits_per_segment: int
    credits: int


class EstimateView(msgspec.Struct, frozen=True):
    encoding: str
    segments: int
    price_version: str
    culprits: list[CulpritView]
    countries: list[CountryEstimate]


class WalletSettingsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    low_balance_threshold: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]


class TopUpIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    package: Annotated[str, msgspec.Meta(max_length=32)]


class BillingController(Controller):
    path = "/"
    tags = ["billing"]

    @get("/wallet", summary="Balance, reserved credits and the low-balance threshold")
    async def wallet(self, shop: CurrentShop, container: NamedDependency[Container]) -> WalletView:
        async with container.uow.for_shop(shop.id) as uow:
            return WalletView.of(await uow.wallet.balance())

    @patch("/wallet", summary="Set the low-balance threshold")
    async def update_wallet(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        data: JSONBody[WalletSettingsIn],
    ) -> WalletView:
        async with container.uow.for_shop(shop.id) as uow:
            await uow.wallet.ensure()
            await uow.wallet.set_low_balance_threshold(data.low_balance_threshold)
            view = WalletView.of(await uow.wallet.balance())
            await uow.commit()
        return view

    @post("/wallet/topups", status_code=201, summary="Buy credits: returns Shopify's approval URL")
    async def start_topup(
        self, shop: CurrentShop, container: NamedDependency[Container], data: JSONBody[TopUpIn]
    ) -> dict[str, str]:
        try:
            url = await container.start_topup()(shop, data.package)
        except ShopifyUnavailable:
            raise ServiceUnavailableException(
                detail="Shopify is not answering; try again"
            ) from None
        except ShopifyRejected as exc:
            # A frozen or locked store (402, 423) or a userError: the merchant must act at
            # Shopify, and asking again changes nothing.
            log.warning("top-up refused by shopify", extra={"error_type": type(exc).__name__})
            raise ClientException(
                status_code=409, detail=f"Shopify refused the purchase: {str(exc)[:200]}"
            ) from None
        except (ShopifyUnauthorized, NotInstalled):
            # Shopify refused the stored token, which is then dropped: reloading the app
            # exchanges a new one.
            raise ServiceUnavailableException(
                detail="Shopify no longer accepts the app's access; reload the app"
            ) from None
        return {"confirmation_url": url}

    @get("/wallet/transactions", summary="The ledger, newest first (cursor pagination)")
    async def transactions(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> TransactionPage:
        async with container.uow.for_shop(shop.id) as uow:
            rows = await uow.wallet.history(
                limit=limit + 1, before=decode_cursor(cursor) if cursor else None
            )
        items = [
            TransactionView(
                id=row_id,
                created_at=at,
                kind=e.entry.kind.value,
                balance_delta=e.entry.balance_delta,
                reserved_delta=e.entry.reserved_delta,
                balance_after=e.balance_after,
                reserved_after=e.reserved_after,
                reference=e.entry.reference,
                reason=e.entry.reason,
                source=e.entry.source,
                price_version=e.entry.price_version,
            )
            for row_id, at, e in rows[:limit]
        ]
        last = items[-1] if len(rows) > limit else None
        return TransactionPage(
            items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
        )

    @get("/pricing", summary="Credits per SMS segment by destination country")
    async def pricing(self, container: NamedDependency[Container]) -> PricingView:
        prices = container.price_list
        return PricingView(
            version=prices.version,
            default_credits_per_segment=prices.default_credits,
            credits_per_segment=dict(prices.credits),
        )

    @post("/estimates", status_code=200, summary="Segments, encoding and credits for a text")
    async def estimates(
        self, shop: CurrentShop, container: NamedDependency[Container], data: JSONBody[EstimateIn]
    ) -> EstimateView:
        prices = container.price_list
        text = data.text
        if data.category is not None:  # the same composition QueueMessages charges for
            footer = SendingPolicy.from_settings(shop.settings).footer
            text = compose(data.text, data.category, shop.name, footer)
        info = segment_text(text)
        per_country = [estimate(text, c.upper(), prices) for c in data.countries]
        return EstimateView(
            encoding=info.encoding.value,
            segments=info.segments,
            price_version=prices.version,
            culprits=[CulpritView(c.char, c.count, c.replacement) for c in info.culprits],
            countries=[
                CountryEstimate(e.country or "", e.credits_per_segment, e.credits)
                for e in per_country
            ],
        )


class BillingReturnController(Controller):
    """Where Shopify sends the merchant after approving a purchase (no session token on a
    browser redirect: the purchase's status is asked of Shopify before anything is credited)."""

    path = "/billing"
    tags = ["billing"]

    @get("/return", summary="Return from Shopify's purchase approval")
    async def purchase_return(
        self,
        container: NamedDependency[Container],
        shop: FromQuery[str] = "",
        topup: FromQuery[uuid.UUID | None] = None,
    ) -> Redirect:
        if topup is None:
            raise ValidationException(detail="missing topup")
        # A malformed `shop` is the domain's InvalidValue (422), never a lookup.
        async with container.uow.for_shop_domain(shop_domain(shop)) as uow:
            found = await uow.shops.get(uow.shop_id) if uow.shop_id else None
        if found is None:
            raise NotFoundException(detail="unknown shop")
        try:
            await ReturnFromPurchase(container.uow, container.shopify_admin)(found, topup)
        except (ShopifyUnavailable, ShopifyRejected, ShopifyUnauthorized) as exc:
            # The merchant may well have paid: they belong in the app, not on an error
            # page, and the app_purchases_one_time/update webhook credits the purchase.
            log.warning(
                "purchase status not confirmed on return",
                extra={"shop": found.domain, "error_type": type(exc).__name__},
            )
        return Redirect(f"https://{found.domain}/admin/apps/{container.settings.shopify_api_key}")
