"""Create a contact by hand or through the API: the phone is required and normalized."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from application.ports import Clock, IdGenerator, PhoneNumbers, UnitOfWork
from domain.contacts import (
    Contact,
    normalize_email,
    normalize_name,
    normalize_tags,
    normalize_timezone,
)
from domain.errors import DomainError, InvalidValue


class DuplicateContact(DomainError):
    code = "duplicate-contact"


@dataclass(frozen=True, slots=True)
class NewContact:
    phone: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    timezone: str | None = None  # where the merchant knows the shopper to be


class CreateContact:
    """No consent comes with creation: texting needs a recorded consent event."""

    def __init__(self, phones: PhoneNumbers, clock: Clock, ids: IdGenerator) -> None:
        self._phones = phones
        self._clock = clock
        self._ids = ids

    async def __call__(self, uow: UnitOfWork, new: NewContact) -> Contact:
        shop = await uow.shops.get(uow.shop_id)
        with _field("phone"):
            phone = self._phones.parse(new.phone, shop.country if shop else None)
        if await uow.contacts.find(phone=phone.e164):
            raise DuplicateContact("a contact with this phone number already exists")
        with _field("email"):
            email = normalize_email(new.email)
        with _field("tags"):
            tags = normalize_tags(list(new.tags))
        with _field("timezone"):
            timezone = normalize_timezone(new.timezone)
        with _field("first_name"):
            first_name = normalize_name(new.first_name)
        with _field("last_name"):
            last_name = normalize_name(new.last_name)
        contact = Contact(
            id=self._ids.new_id(),
            shop_id=uow.shop_id,
            phone=phone.e164,
            email=email,
            first_name=first_name,
            last_name=last_name,
            country=phone.region,
            timezone=timezone,
            phone_timezones=phone.timezones,
            tags=tags,
        )
        await uow.contacts.add(contact, self._clock.now())
        return contact


@contextmanager
def _field(name: str) -> Iterator[None]:
    """Refusals say which field (a CSV import's column) to fix: a CSV whose columns slid
    would otherwise leave the merchant guessing, as the reasons never quote the value."""
    try:
        yield
    except InvalidValue as exc:
        raise InvalidValue(f"{name}: {exc}") from None


class ContactForPhone:
    """The shop's contact for a phone number typed by a shopper, created when new."""

    def __init__(self, phones: PhoneNumbers, clock: Clock, ids: IdGenerator) -> None:
        self._phones = phones
        self._clock = clock
        self._ids = ids

    async def __call__(self, uow: UnitOfWork, raw_phone: str) -> Contact:
        shop = await uow.shops.get(uow.shop_id)
        phone = self._phones.parse(raw_phone, shop.country if shop else None)
        contact = await uow.contacts.find(phone=phone.e164)
        if contact is None:
            contact = Contact(
                id=self._ids.new_id(),
                shop_id=uow.shop_id,
                phone=phone.e164,
                country=phone.region,
                phone_timezones=phone.timezones,
            )
            await uow.contacts.add(contact, self._clock.now())
        return contact
