"""Contacts and consent from Shopify's webhooks (contract §7): customers, the SMS consent
topic, checkouts and orders. Changes that came from Shopify are never pushed back."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.contacts.record_consent import ConsentChange, RecordConsent
from application.events.payloads import instant, locale, shopify_id
from application.ports import Clock, CountryZones, IdGenerator, PhoneNumbers, UnitOfWork
from domain.consent import (
    SHOPIFY_UPDATED_AT_KEY,
    ConsentSource,
    ConsentState,
    InvalidConsentTransition,
    OptInLevel,
    opt_in_level_from_shopify,
    state_from_shopify,
)
from domain.contacts import Contact, PhoneNumber, normalize_email, normalize_name
from domain.errors import InvalidValue
from domain.events import WebhookEvent

log = logging.getLogger("blossom.contacts")


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What a payload says about a shopper; every field may be missing (protected data)."""

    shopify_customer_id: int | None
    raw_phone: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    country: str | None  # where the payload's addresses are: the region of a national number
    # The customer's own address, never a checkout's: an order may ship to someone else.
    address_country: str | None
    locale: str | None
    updated_at: datetime | None


def _first(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def customer_facts(customer: Mapping[str, Any]) -> CustomerFacts:
    address = customer.get("default_address") or {}
    return CustomerFacts(
        shopify_customer_id=shopify_id(customer.get("id")),
        raw_phone=_first(customer.get("phone"), address.get("phone")),
        email=customer.get("email"),
        first_name=customer.get("first_name"),
        last_name=customer.get("last_name"),
        country=address.get("country_code"),
        address_country=address.get("country_code"),
        locale=locale(customer.get("locale")),
        updated_at=instant(customer.get("updated_at")),
    )


def checkout_facts(payload: Mapping[str, Any]) -> CustomerFacts:
    customer = payload.get("customer") or {}
    billing = payload.get("billing_address") or {}
    shipping = payload.get("shipping_address") or {}
    return CustomerFacts(
        shopify_customer_id=shopify_id(customer.get("id")),
        raw_phone=_first(
            payload.get("sms_marketing_phone"),
            payload.get("phone"),
            customer.get("phone"),
            shipping.get("phone"),
            billing.get("phone"),
        ),
        email=_first(payload.get("email"), customer.get("email")),
        first_name=_first(customer.get("first_name"), billing.get("first_name")),
        last_name=_first(customer.get("last_name"), billing.get("last_name")),
        country=_first(shipping.get("country_code"), billing.get("country_code")),
        address_country=(customer.get("default_address") or {}).get("country_code"),
        locale=locale(payload.get("customer_locale")),
        updated_at=instant(_first(payload.get("updated_at"), payload.get("created_at"))),
    )


class ContactSync:
    """Upsert a contact from Shopify facts: one contact per phone, keyed first by the
    Shopify customer id; an update older than the last one applied changes nothing."""

    def __init__(
        self, phones: PhoneNumbers, zones: CountryZones, clock: Clock, ids: IdGenerator
    ) -> None:
        self._phones = phones
        self._zones = zones
        self._clock = clock
        self._ids = ids

    async def upsert(self, uow: UnitOfWork, facts: CustomerFacts) -> Contact | None:
        shop = await uow.shops.get(uow.shop_id)
        phone = self._phone(facts.raw_phone, facts.country or (shop.country if shop else None))
        email = self._email(facts.email)
        # Locked: a STOP or an erasure committing meanwhile must not be written back over.
        contact = await uow.contacts.find(
            shopify_customer_id=facts.shopify_customer_id,
            phone=phone and phone.e164,
            for_update=True,
        )
        now = self._clock.now()
        if contact is None:
            if phone is None:
                return None  # nothing we could ever text
            contact = Contact(id=self._ids.new_id(), shop_id=uow.shop_id, phone=phone.e164)
            self._apply(contact, facts, email, phone)
            await uow.contacts.add(contact, now)
            return contact
        if not contact.newer_from_shopify(facts.updated_at):
            return contact
        if phone and phone.e164 != contact.phone and await uow.contacts.find(phone=phone.e164):
            phone = None  # the new number belongs to another contact: never merge people
        self._apply(contact, facts, email, phone)
        await uow.contacts.save(contact, now)
        return contact

    def _apply(
        self,
        contact: Contact,
        facts: CustomerFacts,
        email: str | None,
        phone: PhoneNumber | None,
    ) -> None:
        if phone is not None:
            contact.phone = phone.e164
            contact.country = phone.region or contact.country
            contact.phone_timezones = phone.timezones
        if facts.address_country:
            # An address in a country of several zones places no one: it clears the zone
            # of an earlier address abroad rather than keep it.
            contact.address_timezone = self._zones.zone_of(facts.address_country)
        contact.email = email or contact.email
        contact.first_name = self._name(facts.first_name) or contact.first_name
        contact.last_name = self._name(facts.last_name) or contact.last_name
        contact.shopify_customer_id = facts.shopify_customer_id or contact.shopify_customer_id
        contact.locale = facts.locale or contact.locale
        contact.shopify_updated_at = facts.updated_at or contact.shopify_updated_at

    def _phone(self, raw: str | None, region: str | None) -> PhoneNumber | None:
        if not raw:
            return None
        try:
            return self._phones.parse(raw, region)
        except InvalidValue as exc:
            log.info("phone from Shopify rejected", extra={"reason": str(exc)})
            return None

    @staticmethod
    def _email(raw: str | None) -> str | None:
        try:
            return normalize_email(raw)
        except InvalidValue:
            return None

    @staticmethod
    def _name(raw: str | None) -> str | None:
        """A name the API would refuse (control characters, line breaks) is dropped here, not
        stored: it would reach texts, exports and the admin all the same."""
        try:
            return normalize_name(raw)
        except InvalidValue as exc:
            log.info("name from Shopify rejected", extra={"reason": str(exc)})
            return None


class HandleCustomerUpsert:
    """`customers/create` and `customers/update`: contact fields only (no consent since 2025-01)."""

    def __init__(self, sync: ContactSync) -> None:
        self._sync = sync

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        await self._sync.upsert(uow, customer_facts(payload))


class HandleMarketingConsent:
    """`customers_marketing_consent/update`: Shopify's SMS consent record, applied only when
    newer than ours, recorded with source `shopify` (and so never pushed back)."""

    def __init__(self, sync: ContactSync, record: RecordConsent) -> None:
        self._sync = sync
        self._record = record

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        consent = payload.get("sms_marketing_consent") or {}
        state = state_from_shopify(consent.get("state"))
        contact = await self._sync.upsert(uow, customer_facts(payload))
        if contact is None or state in (None, ConsentState.UNKNOWN):
            return
        updated_at = instant(consent.get("consent_updated_at")) or event.triggered_at
        if contact.consent_updated_at and updated_at and updated_at <= contact.consent_updated_at:
            return  # an older record arriving late
        await _record_quietly(
            self._record,
            uow,
            ConsentChange(
                contact_id=contact.id,
                new_state=state,
                source=ConsentSource.SHOPIFY,
                actor="shopify",
                occurred_at=updated_at,
                opt_in_level=opt_in_level_from_shopify(consent.get("opt_in_level")),
                evidence={
                    SHOPIFY_UPDATED_AT_KEY: updated_at.isoformat() if updated_at else "",
                    "collected_from": str(consent.get("consent_collected_from") or "").lower(),
                    "webhook_id": event.webhook_id,
                },
            ),
        )


class HandleCheckoutOrOrder:
    """`checkouts/*` and `orders/create`: the phone, and the checkout's SMS checkbox."""

    def __init__(self, sync: ContactSync, record: RecordConsent) -> None:
        self._sync = sync
        self._record = record

    async def __call__(
        self, uow: UnitOfWork, event: WebhookEvent, payload: Mapping[str, Any]
    ) -> None:
        facts = checkout_facts(payload)
        contact = await self._sync.upsert(uow, facts)
        if contact is None or payload.get("buyer_accepts_sms_marketing") is not True:
            return
        await _record_quietly(
            self._record,
            uow,
            ConsentChange(
                contact_id=contact.id,
                new_state=ConsentState.SUBSCRIBED,
                source=ConsentSource.CHECKOUT,
                actor="shopify_checkout",
                # When the shopper was at this checkout, not when it last changed: a late
                # update of a checkout begun before a STOP is no new act.
                occurred_at=instant(payload.get("created_at"))
                or facts.updated_at
                or event.triggered_at,
                opt_in_level=OptInLevel.SINGLE_OPT_IN,
                evidence={"topic": event.topic, "webhook_id": event.webhook_id},
            ),
        )


async def _record_quietly(record: RecordConsent, uow: UnitOfWork, change: ConsentChange) -> None:
    """A transition our rules refuse (say, a stale checkbox after a STOP) is not an error
    to retry: it is logged and the webhook counts as handled."""
    try:
        await record(uow, change)
    except InvalidConsentTransition as exc:
        log.info("consent change from Shopify refused", extra={"reason": str(exc)})
