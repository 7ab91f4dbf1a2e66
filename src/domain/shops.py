"""Shops: the tenants. Every other aggregate belongs to exactly one shop."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from domain.errors import InvalidValue

_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com$")


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
    installed_at: datetime | None = None
    uninstalled_at: datetime | None = None
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def installed(self) -> bool:
        return self.status is ShopStatus.INSTALLED
