"""Webhook events: Shopify deliveries kept in an inbox until a handler has run."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

# The compliance topics are mandatory for every App Store app and arrive whether or not
# we subscribe through the API; their fulfilment must happen within 30 days.
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})

# Topics we subscribe to through the Admin API, as Shopify names them in the header,
# with the access scope each needs (contract §3.5); None needs no scope.
TOPIC_SCOPES: dict[str, str | None] = {
    "app/uninstalled": None,
    "shop/update": None,
    "app_purchases_one_time/update": None,
    "customers/create": "read_customers",
    "customers/update": "read_customers",
    "customers_marketing_consent/update": "read_customers",
    "checkouts/create": "read_orders",
    "checkouts/update": "read_orders",
    "orders/create": "read_orders",
    "orders/paid": "read_orders",
    "fulfillments/create": "read_fulfillments",
    "fulfillments/update": "read_fulfillments",
    "fulfillment_events/create": "read_fulfillments",
    "inventory_levels/update": "read_inventory",
}
SUBSCRIBED_TOPICS = frozenset(TOPIC_SCOPES)


def topics_allowed_by(scopes: tuple[str, ...]) -> list[str]:
    """The subscribable topics the granted scopes cover (`write_x` implies `read_x`)."""
    granted = set(scopes) | {s.replace("write_", "read_", 1) for s in scopes}
    return sorted(t for t, scope in TOPIC_SCOPES.items() if scope is None or scope in granted)


ACCEPTED_TOPICS = SUBSCRIBED_TOPICS | COMPLIANCE_TOPICS


def subscription_enum(topic: str) -> str:
    """`orders/create` -> `ORDERS_CREATE`, the GraphQL `WebhookSubscriptionTopic`."""
    return topic.replace("/", "_").upper()


class EventStatus(enum.StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One authenticated delivery, as it arrived."""

    shop_domain: str
    topic: str
    webhook_id: str
    event_id: str | None
    triggered_at: datetime | None
    api_version: str
    payload: bytes


@dataclass(slots=True)
class WebhookEvent:
    id: uuid.UUID
    shop_id: uuid.UUID
    topic: str
    webhook_id: str
    event_id: str | None
    triggered_at: datetime | None
    api_version: str
    status: EventStatus
    attempts: int
    error: str | None
    received_at: datetime
    processed_at: datetime | None = None
