"""Contacts: the shoppers a shop may text, one per phone number per shop."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

from domain.consent import ConsentState
from domain.errors import InvalidValue

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_TAG = re.compile(r"^[\w .:/-]{1,64}$")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    e164: str
    region: str | None
    timezones: tuple[str, ...]  # every zone the number may be used in; () when unknown
    mobile: bool


def normalize_email(value: str | None) -> str | None:
    """Lower-cased and trimmed, or None when empty; raises `InvalidValue` when malformed."""
    email = (value or "").strip().lower()
    if not email:
        return None
    # Control and invisible characters (a NUL from a spreadsheet export, an escape code)
    # make an address no mail server delivers to, and they corrupt exports and logs.
    if not _EMAIL.fullmatch(email) or len(email) > 254 or not email.isprintable():
        raise InvalidValue("not an e-mail address")
    return email


def normalize_name(value: str | None) -> str | None:
    """Trimmed, or None when empty; raises `InvalidValue` on control or line-break characters
    (a NUL, an escape code, a newline): a name goes into texts, exports and the admin, where
    such characters corrupt or spoof what is shown. Other invisible characters (ZWNJ in
    Persian names, ZWJ in emoji) belong to real names and stay."""
    name = (value or "").strip()
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in name):
        raise InvalidValue("a name cannot hold control characters or line breaks")
    return name or None


def normalize_tags(tags: list[str] | tuple[str, ...]) -> list[str]:
    """Lower-cased, trimmed and deduplicated; raises `InvalidValue` naming a bad tag by its
    position, since quoting it would copy whatever a shifted CSV column put there (an
    e-mail address, a phone number) into error reports."""
    clean: list[str] = []
    for position, tag in enumerate(tags, start=1):
        value = tag.strip().lower()
        if not value:
            continue
        if not _TAG.fullmatch(value):
            raise InvalidValue(
                f"tag {position} has characters other than letters, digits, spaces and .:/-"
            )
        if value not in clean:
            clean.append(value)
    return clean


@cache
def _known_zones() -> frozenset[str]:
    # "localtime" is whatever the server is set to, and "Factory" is tzdb's placeholder for
    # an unset clock: neither says where anyone is.
    return frozenset(available_timezones()) - {"localtime", "Factory"}


def normalize_timezone(value: str | None) -> str | None:
    """Trimmed, or None when empty; raises `InvalidValue` unless it names an IANA zone."""
    zone = (value or "").strip()
    if not zone:
        return None
    if zone not in _known_zones():
        raise InvalidValue("not an IANA time zone (like Europe/Paris)")
    return zone


def sending_zones(chosen: str | None, address: str | None, phone: Sequence[str]) -> tuple[str, ...]:
    """The zones quiet hours must hold in, in the contract's order (sms.md §4): the zone
    the merchant set, else the Shopify address's, else every zone the phone number spans
    (the recipient may be in any). Empty when nothing places the recipient: then the
    shop's zone applies, read at sending time so that it follows the shop's settings."""
    if chosen:
        return (chosen,)
    if address:
        return (address,)
    return tuple(phone)


@dataclass(slots=True)
class Contact:
    id: uuid.UUID
    shop_id: uuid.UUID
    phone: str | None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    shopify_customer_id: int | None = None
    country: str | None = None
    # Each clue to where the shopper is, kept apart so that one going stale (a new number,
    # a move abroad) never erases another; `timezones` ranks them.
    timezone: str | None = None  # set by the merchant: wins over what Shopify says
    address_timezone: str | None = None  # of the Shopify customer's default address
    phone_timezones: tuple[str, ...] = ()
    locale: str | None = None
    tags: list[str] = field(default_factory=list)
    consent_state: ConsentState = ConsentState.UNKNOWN
    consent_updated_at: datetime | None = None
    shopify_updated_at: datetime | None = None
    created_at: datetime | None = None
    redacted_at: datetime | None = None
    # When the provider refused `phone` for good. It is about that number only: the
    # repository drops it whenever the phone changes, and only a delivery sets it.
    phone_invalid_at: datetime | None = None

    @property
    def timezones(self) -> tuple[str, ...]:
        return sending_zones(self.timezone, self.address_timezone, self.phone_timezones)

    def newer_from_shopify(self, updated_at: datetime | None) -> bool:
        """Shopify delivers out of order: apply a change only if it is newer than ours."""
        return (
            updated_at is None
            or self.shopify_updated_at is None
            or (updated_at > self.shopify_updated_at)
        )
