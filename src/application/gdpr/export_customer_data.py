"""`customers/data_request` (or a merchant's own request): everything we hold about one
customer, as a machine-readable JSON bundle for the merchant to hand over (contract §4.2:
it goes to the store owner, not to the customer)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from application.gdpr.requests import record_fulfilled
from application.gdpr.subjects import Identity, correspondent, find_subject
from application.ports import BackInStockEntry, Clock, PhoneNumbers, UnitOfWork
from domain.consent import ConsentEvent
from domain.contacts import Contact
from domain.gdpr import GdprRequest
from domain.messages import InboundText, Message


class ExportCustomerData:
    """Runs inside the caller's unit of work; stores the bundle sealed on the request."""

    def __init__(self, phones: PhoneNumbers, clock: Clock) -> None:
        self._phones = phones
        self._clock = clock

    async def __call__(self, uow: UnitOfWork, request: GdprRequest, *, actor: str) -> None:
        shop = await uow.shops.get(request.shop_id)
        contacts, identity = await find_subject(
            uow, request.subject, self._phones, shop.country if shop else None
        )
        records = await _records(uow, contacts, identity)
        now = self._clock.now()
        bundle = {
            "shop": shop.domain if shop else None,
            "generated_at": _iso(now),
            "request": _request(request),
            "contacts": [_contact(c) for c in contacts],
            **records,
            # Link clicks and attributed orders join as those features land; the keys exist
            # now so a consumer of the format never has to change.
            "clicks": [],
            "orders": [],
        }
        await uow.gdpr.store_bundle(request.id, json.dumps(bundle, ensure_ascii=False, indent=2))
        request.has_bundle = True
        counts = {key: len(rows) for key, rows in records.items()}
        await record_fulfilled(
            uow, request, now, actor=actor, details={"contacts": len(contacts), **counts}
        )


async def _records(
    uow: UnitOfWork, contacts: list[Contact], identity: Identity
) -> dict[str, list[dict[str, Any]]]:
    """What the shop holds about the person besides the contacts themselves, by bundle key.
    Texts are found by number as well: one may have texted before becoming a contact."""
    who = correspondent(contacts, identity)
    return {
        "consent_events": [_event(e) for c in contacts for e in await uow.consent.history(c.id)],
        "messages": [_message(m) for m in await uow.messages.of_correspondent(who)],
        "inbound_messages": [_inbound(t) for t in await uow.messages.inbound_of_correspondent(who)],
        "back_in_stock_requests": [
            _back_in_stock(b) for b in await uow.back_in_stock.of_contacts(who.contact_ids)
        ],
    }


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
        "address_timezone": contact.address_timezone,
        "phone_timezones": list(contact.phone_timezones),
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


def _message(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "contact_id": str(message.contact_id) if message.contact_id else None,
        "to": message.to,
        "text": message.text,
        "category": message.category.value,
        "source": message.source,
        "status": message.status.value,
        "created_at": _iso(message.created_at),
        "scheduled_at": _iso(message.scheduled_at),
        "sent_at": _iso(message.sent_at),
        "finished_at": _iso(message.finished_at),
    }


def _inbound(inbound: InboundText) -> dict[str, Any]:
    return {
        "id": str(inbound.id),
        "contact_id": str(inbound.contact_id) if inbound.contact_id else None,
        "sender": inbound.sender,
        "receiver": inbound.receiver,
        "text": inbound.text,
        "keyword": inbound.keyword,
        "received_at": _iso(inbound.received_at),
    }


def _back_in_stock(entry: BackInStockEntry) -> dict[str, Any]:
    return {
        "contact_id": str(entry.contact_id),
        "variant_id": entry.variant_id,
        "wording": entry.wording,
        "created_at": _iso(entry.created_at),
        "notified_at": _iso(entry.notified_at),
    }
