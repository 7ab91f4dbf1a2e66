"""Shops: the tenants. Every other aggregate belongs to exactly one shop."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.errors import InvalidValue

_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com$")
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_TIME_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")
NAME_LENGTH = 255
SUPPORT_EMAIL = "support_email"  # the settings key


def shop_domain(value: str) -> str:
    """Return the canonical `*.myshopify.com` domain or raise `InvalidValue`."""
    candidate = value.strip().lower()
    if not _SHOP_DOMAIN.fullmatch(candidate):
        raise InvalidValue("shop must be a domain like example.myshopify.com")
    return candidate


class ShopStatus(enum.StrEnum):
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"


@dataclass(slots=True)
class Shop:
    id: uuid.UUID
    domain: str
    name: str
    currency: str = "USD"
    timezone: str = "UTC"
    country: str = "US"
    status: ShopStatus = ShopStatus.INSTALLED
    # When the latest token was granted, not the first install: an `app/uninstalled`
    # fired before it is older than the installation it would undo.
    installed_at: datetime | None = None
    uninstalled_at: datetime | None = None
    settings: dict[str, object] = field(default_factory=dict)
    # When Shopify made the change `refresh` last applied, if it said.
    shopify_updated_at: datetime | None = None

    @property
    def installed(self) -> bool:
        return self.status is ShopStatus.INSTALLED

    @property
    def support_email(self) -> str | None:
        """The address the merchant set for shoppers' questions, if any."""
        email = self.settings.get(SUPPORT_EMAIL)
        return email if isinstance(email, str) and email else None

    @property
    def support_contact(self) -> str:
        """Where a shopper who texts HELP can get help: the merchant's support address,
        else the shop's domain (we keep no address of Shopify's for the shop)."""
        return self.support_email or self.domain

    def mark_installed(self, now: datetime) -> None:
        self.status = ShopStatus.INSTALLED
        self.installed_at = now
        self.uninstalled_at = None

    def mark_uninstalled(self, now: datetime) -> None:
        self.status = ShopStatus.UNINSTALLED
        self.uninstalled_at = now

    def refresh(
        self,
        *,
        name: object,
        currency: object,
        time_zone: object,
        country: object,
        as_of: datetime | None = None,
    ) -> None:
        """Take Shopify's name and locale where each is well-formed and keep ours where not:
        a missing or odd value must neither fail the update nor blank the shop.

        `as_of` is when Shopify made the change. Deliveries arrive out of order, so a change
        no newer than the last one applied is stale and dropped; one without a time cannot
        be placed and is applied."""
        if as_of and self.shopify_updated_at and as_of <= self.shopify_updated_at:
            return
        self.shopify_updated_at = as_of or self.shopify_updated_at
        if isinstance(name, str) and name.strip():
            self.name = name.strip()[:NAME_LENGTH]
        self.currency = _matching(_CURRENCY, currency) or self.currency
        self.timezone = _matching(_TIME_ZONE, time_zone) or self.timezone
        self.country = _matching(_COUNTRY, country) or self.country


def _matching(pattern: re.Pattern[str], value: object) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


# Shopify expiring offline tokens live an hour; refreshing with this margin means a call
# never starts with a token about to die mid-flight.
REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ShopCredentials:
    """The shop's offline Admin API token (plaintext only in memory)."""

    # Out of repr: a credentials object in a test's output, a debugger or an error message
    # would otherwise print the tokens.
    access_token: str = field(repr=False)
    scopes: tuple[str, ...]
    access_expires_at: datetime | None = None
    refresh_token: str | None = field(default=None, repr=False)
    refresh_expires_at: datetime | None = None
    # Admin API tokens created in a shop's admin (custom apps) never expire and cannot be
    # exchanged; only public-app offline tokens are migrated to expiring ones.
    custom_app: bool = False

    @property
    def expiring(self) -> bool:
        return self.access_expires_at is not None

    def needs_refresh(self, now: datetime) -> bool:
        return self.access_expires_at is not None and self.access_expires_at - now < REFRESH_MARGIN

    def missing_scopes(self, required: tuple[str, ...]) -> tuple[str, ...]:
        """Scopes we need that were not granted (`write_x` implies `read_x`)."""
        granted = set(self.scopes) | {s.replace("write_", "read_", 1) for s in self.scopes}
        return tuple(s for s in required if s not in granted)
