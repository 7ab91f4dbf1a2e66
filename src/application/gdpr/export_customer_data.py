"""`customers/data_request` (or a merchant's own request): everything we hold about one
customer, as a machine-readable JSON bundle for the merchant to hand over (contract §4.2:
it goes to the store owner, not to the customer)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from application.gdpr.requests import record_fulfilled
from application.gdpr.subjects import find_subject
from application.ports import Clock, PhoneNumbers, UnitOfWork
from domain.consent import ConsentEvent
from domain.contacts import Contact
from domain.gdpr import GdprRequest


class ExportCustomerData:
    """Runs inside the caller's unit of work; stores the bundle sealed on the request."""

    def __init__(self, phones: PhoneNumbers, clock: Clock) -> None:
        self._phones = phones
        self._clock = clock

    async def __call__(self, uow: UnitOfWork, request: GdprRequest, *, actor: str) -> None:
        shop = await uow.shops.get(request.shop_id)
        contacts, _ = await find_subject(
            uow, request.subject, self._phones, shop.country if shop else None
        )
        events: list[dict[str, Any]] = []
        for contact in contacts:
            events.extend(_event(e) for e in await uow.consent.history(contact.id))
        now = self._clock.now()
        bundle = {
            "shop": shop.domain if shop else None,
            "generated_at": _iso(now),
            "request": _request(request),
            "contacts": [_contact(c) for c in contacts],
            "consent_events": events,
            # Messages, link clicks and attributed orders join as those features land; the
            # keys exist now so a consumer of the format never has to change.
            "messages": [],
            "clicks": [],
            "orders": [],
        }
        await uow.gdpr.store_bundle(request.id, json.dumps(bundle, ensure_ascii=False, indent=2))
        request.has_bundle = True
        await record_fulfilled(
            uow,
            request,
            now,
            actor=actor,
            details={"contacts": len(contacts), "events": len(events)},
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _request(request: GdprRequest) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "kind": request.kind.value,
        "source": request.source.value,
        "shopify_request_id": request.shopify_request_id,
        "received_at": _iso(request.received_at),
        "due_at": _iso(request.due_at),
        "customer": {
            "shopify_customer_id": request.subject.shopify_customer_id,
            "phone": request.subject.phone,
            "email": request.subject.email,
        },
        "orders_requested": list(request.subject.orders),
    }


def _contact(contact: Contact) -> dict[str, Any]:
    return {
        "id": str(contact.id),
        "shopify_customer_id": contact.shopify_customer_id,
        "phone": contact.phone,
        "phone_invalid_at": _iso(contact.phone_invalid_at),
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "country": contact.country,
        "timezone": contact.timezone,
        "locale": contact.locale,
        "tags": list(contact.tags),
        "consent_state": contact.consent_state.value,
        "consent_updated_at": _iso(contact.consent_updated_at),
        "created_at": _iso(contact.created_at),
    }


def _event(event: ConsentEvent) -> dict[str, Any]:
    return {
        "contact_id": str(event.contact_id),
        "sequence": event.sequence,
        "previous_state": event.previous_state.value,
        "new_state": event.new_state.value,
        "source": event.source.value,
        "actor": event.actor,
        "occurred_at": _iso(event.occurred_at),
        "wording": event.wording,
        "opt_in_level": event.opt_in_level.value if event.opt_in_level else None,
        "ip_hash": event.ip_hash,
        "user_agent": event.user_agent,
        "evidence": dict(event.evidence),
        "hash": event.hash,
    }
