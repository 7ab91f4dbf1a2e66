"""Who a request is about: the contacts it names, and the keys that spot the same person
in other stored data (webhook payloads, earlier requests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from application.ports import Correspondent, PhoneNumbers, UnitOfWork
from domain.contacts import Contact, normalize_email
from domain.errors import InvalidValue
from domain.gdpr import Subject


def normalized_phone(raw: str | None, phones: PhoneNumbers, region: str | None) -> str | None:
    if not raw:
        return None
    try:
        return phones.parse(raw, region).e164
    except InvalidValue:
        return None


def normalized_email(raw: str | None) -> str | None:
    try:
        return normalize_email(raw)
    except InvalidValue:
        return None


@dataclass(frozen=True, slots=True)
class Identity:
    """The normalized keys of one data subject."""

    customer_ids: frozenset[int]
    phones: frozenset[str]  # E.164
    emails: frozenset[str]  # normalized
    orders: frozenset[int]

    @classmethod
    def of(cls, subject: Subject, phones: PhoneNumbers, region: str | None) -> Identity:
        phone = normalized_phone(subject.phone, phones, region)
        email = normalized_email(subject.email)
        return cls(
            customer_ids=frozenset(
                {subject.shopify_customer_id} if subject.shopify_customer_id is not None else ()
            ),
            phones=frozenset({phone} if phone else ()),
            emails=frozenset({email} if email else ()),
            orders=frozenset(subject.orders),
        )

    def widened(self, contacts: list[Contact]) -> Identity:
        """Add the keys the matched contacts hold (a request may give only an e-mail)."""
        return Identity(
            customer_ids=self.customer_ids
            | {c.shopify_customer_id for c in contacts if c.shopify_customer_id is not None},
            phones=self.phones | {c.phone for c in contacts if c.phone},
            emails=self.emails | {c.email for c in contacts if c.email},
            orders=self.orders,
        )

    def shares_a_key_with(self, other: Identity) -> bool:
        return bool(
            self.customer_ids & other.customer_ids
            or self.phones & other.phones
            or self.emails & other.emails
        )

    def mentioned_in(
        self, topic: str, payload: Any, phones: PhoneNumbers, region: str | None
    ) -> bool:
        """Whether a Shopify payload names this person: their customer id (or one of the
        listed orders), their e-mail anywhere, or their phone in any field or format."""
        resource = topic.split("/", 1)[0]
        for key, parent, value in _leaves(payload):
            if self._names_by_id(resource, key, parent, value):
                return True
            if isinstance(value, str) and self._names_in_text(key, value, phones, region):
                return True
        return False

    def _names_by_id(self, resource: str, key: str, parent: str | None, value: Any) -> bool:
        number = _as_int(value)
        if number is None:
            return False
        top_level_id = key == "id" and parent is None
        if key == "customer_id" or (key == "id" and parent == "customer"):
            return number in self.customer_ids
        if top_level_id and resource.startswith("customers"):
            return number in self.customer_ids
        if key == "order_id" or (top_level_id and resource == "orders"):
            return number in self.orders
        return False

    def _names_in_text(
        self, key: str, value: str, phones: PhoneNumbers, region: str | None
    ) -> bool:
        lowered = value.lower()
        if any(email in lowered for email in self.emails):
            return True
        if any(phone in value for phone in self.phones):
            return True
        return "phone" in key.lower() and normalized_phone(value, phones, region) in self.phones


def _leaves(value: Any, key: str = "", parent: str | None = None) -> Iterator[tuple[str, Any, Any]]:
    """(key, parent key, value) of every scalar; list items keep their list's key."""
    if isinstance(value, dict):
        inner_parent = key or None
        for inner_key, inner in value.items():
            yield from _leaves(inner, str(inner_key), inner_parent)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key, parent)
    else:
        yield key, parent, value


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


async def find_subject(
    uow: UnitOfWork, subject: Subject, phones: PhoneNumbers, region: str | None
) -> tuple[list[Contact], Identity]:
    """The contacts the request's own keys match (one hop only: a shared e-mail on a
    matched contact never pulls in a third person) and the identity widened by them."""
    keys = Identity.of(subject, phones, region)
    contacts = await uow.contacts.matching(
        phones=sorted(keys.phones),
        emails=sorted(keys.emails),
        shopify_customer_ids=sorted(keys.customer_ids),
    )
    return contacts, keys.widened(contacts)


def correspondent(contacts: list[Contact], identity: Identity) -> Correspondent:
    """Whose texts are the subject's: their contacts', and any sent to or from one of their
    numbers, since a number may text the shop before it becomes a contact."""
    return Correspondent(tuple(c.id for c in contacts), tuple(sorted(identity.phones)))
