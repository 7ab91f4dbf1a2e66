"""GDPR rights: Shopify's compliance requests (and the merchant's own), each owed within 30
days of receipt (contract shopify.md §4.1)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import InvalidValue

LEGAL_DEADLINE = timedelta(days=30)


class RequestKind(enum.StrEnum):
    DATA_REQUEST = "data_request"  # customers/data_request: export for the merchant
    REDACT = "redact"  # customers/redact: erase one customer
    SHOP_REDACT = "shop_redact"  # shop/redact: erase the whole shop


class RequestStatus(enum.StrEnum):
    PENDING = "pending"  # still owed
    FULFILLED = "fulfilled"
    FAILED = "failed"  # will not complete on its own: a person has to decide


class RequestSource(enum.StrEnum):
    SHOPIFY = "shopify"
    MERCHANT = "merchant"


def due_date(received_at: datetime) -> datetime:
    """The legal deadline: 30 days after receipt."""
    if received_at.tzinfo is None:
        raise InvalidValue("received_at must be timezone-aware")
    return received_at + LEGAL_DEADLINE


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom a request is about, as the requester gave it (not normalized): any of the
    Shopify customer id, phone and e-mail, plus the orders the request lists."""

    shopify_customer_id: int | None = None
    phone: str | None = None
    email: str | None = None
    orders: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return self.shopify_customer_id is None and not self.phone and not self.email


@dataclass(slots=True)
class GdprRequest:
    id: uuid.UUID
    shop_id: uuid.UUID
    kind: RequestKind
    source: RequestSource
    subject: Subject
    received_at: datetime
    due_at: datetime
    status: RequestStatus = RequestStatus.PENDING
    shopify_request_id: str | None = None
    fulfilled_at: datetime | None = None
    error: str | None = None
    has_bundle: bool = False  # a sealed export is stored (data requests, until erased)

    @classmethod
    def receive(
        cls,
        *,
        id: uuid.UUID,
        shop_id: uuid.UUID,
        kind: RequestKind,
        source: RequestSource,
        subject: Subject,
        received_at: datetime,
        shopify_request_id: str | None = None,
    ) -> GdprRequest:
        return cls(
            id=id,
            shop_id=shop_id,
            kind=kind,
            source=source,
            subject=subject,
            received_at=received_at,
            due_at=due_date(received_at),
            shopify_request_id=shopify_request_id,
        )

    def fulfil(self, now: datetime) -> None:
        self.status = RequestStatus.FULFILLED
        self.fulfilled_at = now
        self.error = None

    def attempt_failed(self, error: str) -> None:
        """An attempt broke: the request stays owed, and the periodic job tries again."""
        self.error = error

    def hold(self, reason: str) -> None:
        """Stop trying: completing it needs a person's decision first."""
        self.status = RequestStatus.FAILED
        self.error = reason
