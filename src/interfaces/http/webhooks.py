"""Webhook ingress: verify on the raw bytes, store, enqueue, answer — nothing slower."""

from __future__ import annotations

import logging

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, ValidationException

from application.events.payloads import instant
from application.ports import InboxEntry
from domain.events import ACCEPTED_TOPICS, WebhookDelivery
from infrastructure.shopify.signatures import SignatureError, normalize_shop_domain, verify_webhook
from infrastructure.telemetry.metrics import WEBHOOKS
from infrastructure.telemetry.tracing import job_meta
from interfaces.bootstrap import Container

log = logging.getLogger("blossom.webhooks")

_REQUIRED = (
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
)


class ShopifyWebhookController(Controller):
    path = "/webhooks/shopify"
    tags = ["webhooks"]

    @post("/", status_code=200, summary="Shopify webhook deliveries (HMAC-signed)")
    async def receive(
        self, request: Request, container: NamedDependency[Container]
    ) -> dict[str, str]:
        body = await request.body()
        try:
            verify_webhook(
                body,
                request.headers.get("x-shopify-hmac-sha256"),
                container.settings.shopify_secrets,
            )
        except SignatureError as exc:
            WEBHOOKS.labels("unknown", "rejected").inc()
            log.warning("webhook rejected", extra={"reason": exc.reason})
            raise NotAuthorizedException(detail=f"webhook signature: {exc.reason}") from None
        delivery = _delivery(request, body)
        outcome = await container.webhook_ingress.submit(InboxEntry(delivery, job_meta()))
        WEBHOOKS.labels(delivery.topic, outcome.value).inc()
        if outcome.value != "accepted":
            log.info("webhook %s", outcome.value, extra={"topic": delivery.topic})
        return {"status": outcome.value}


def _delivery(request: Request, body: bytes) -> WebhookDelivery:
    headers = request.headers
    missing = [name for name in _REQUIRED if not headers.get(name)]
    if missing:
        raise ValidationException(detail=f"missing header(s): {', '.join(missing)}")
    topic = headers["x-shopify-topic"]
    if topic not in ACCEPTED_TOPICS:
        WEBHOOKS.labels("other", "unsupported").inc()
        raise ValidationException(detail=f"unsupported topic {topic[:100]!r}")
    try:
        shop = normalize_shop_domain(headers["x-shopify-shop-domain"])
    except SignatureError:
        raise ValidationException(detail="X-Shopify-Shop-Domain is not a shop domain") from None
    return WebhookDelivery(
        shop_domain=shop,
        topic=topic,
        webhook_id=headers["x-shopify-webhook-id"][:255],
        event_id=headers.get("x-shopify-event-id", "")[:255] or None,
        # Not signed: a bad one must not cost the delivery.
        triggered_at=instant(headers.get("x-shopify-triggered-at")),
        api_version=headers["x-shopify-api-version"][:16],
        payload=body,
    )
