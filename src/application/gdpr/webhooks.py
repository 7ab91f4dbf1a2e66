"""The three mandatory compliance webhooks (contract shopify.md §4.2). Each is recorded as
a tracked request inside the delivery's own transaction; customer requests are fulfilled
right there, the shop's erasure is deferred to its own job (see PurgeShop)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.events.payloads import shopify_id, text
from application.gdpr.fulfil_request import FulfilRequest
from application.gdpr.requests import SHOPIFY_ACTOR, ReceiveRequest
from application.ports import UnitOfWork
from application.tasks import PURGE_SHOP
from domain.events import WebhookEvent
from domain.gdpr import RequestKind, RequestSource, Subject


def subject_of(payload: Mapping[str, Any], orders_key: str) -> Subject:
    customer = payload.get("customer") or {}
    orders = (shopify_id(order) for order in payload.get(orders_key) or ())
    return Subject(
        shopify_customer_id=shopify_id(customer.get("id")),
        phone=text(customer.get("phone")),
        email=text(customer.get("email")),
        orders=tuple(order for order in orders if order is not None),
    )


class HandleCustomerDataRequest:
    """`customers/data_request`: export now; the merchant downloads the bundle."""

    def __init__(self, receive: ReceiveRequest, fulfil: FulfilRequest) -> None:
        self._receive = receive
        self._fulfil = fulfil

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        request = await self._receive(
            uow,
            event.shop_id,
            RequestKind.DATA_REQUEST,
            RequestSource.SHOPIFY,
            subject_of(payload, "orders_requested"),
            actor=SHOPIFY_ACTOR,
            shopify_request_id=text((payload.get("data_request") or {}).get("id"), longest=64),
        )
        await self._fulfil(uow, request, actor=SHOPIFY_ACTOR)


class HandleCustomerRedact:
    """`customers/redact`: erase now."""

    def __init__(self, receive: ReceiveRequest, fulfil: FulfilRequest) -> None:
        self._receive = receive
        self._fulfil = fulfil

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        request = await self._receive(
            uow,
            event.shop_id,
            RequestKind.REDACT,
            RequestSource.SHOPIFY,
            subject_of(payload, "orders_to_redact"),
            actor=SHOPIFY_ACTOR,
        )
        await self._fulfil(uow, request, actor=SHOPIFY_ACTOR)


class HandleShopRedact:
    """`shop/redact`: record it and defer the purge, which commits after this delivery."""

    def __init__(self, receive: ReceiveRequest) -> None:
        self._receive = receive

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        await self._receive(
            uow,
            event.shop_id,
            RequestKind.SHOP_REDACT,
            RequestSource.SHOPIFY,
            Subject(),
            actor=SHOPIFY_ACTOR,
        )
        # Only the shop's id in the arguments: job rows outlive erasures.
        await uow.jobs.defer(
            PURGE_SHOP.job(
                {"shop_id": str(event.shop_id)}, queueing_lock=f"gdpr-purge:{event.shop_id}"
            )
        )
