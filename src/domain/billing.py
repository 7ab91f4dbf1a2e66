"""Billing: what a message costs (the price list) and the wallet that pays for it.

Providers bill per segment per destination country and Mitto's API returns no price
(contract sms.md §1, §7), so the cost of a message is ours to compute: segments times the
credits per segment of its destination country, fixed when the message is queued.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from domain.errors import DomainError, InvalidValue
from domain.messaging import Encoding, segment_text

# ---------------------------------------------------------------------------------------
# Price list
# ---------------------------------------------------------------------------------------

_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
# Versions are stored beside every charge (a 64-character column) and read in logs.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
_SUFFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_credits(credits: object, what: str) -> None:
    # bool is an int subclass; True credits would be a bug, not a price.
    if isinstance(credits, bool) or not isinstance(credits, int) or credits <= 0:
        raise InvalidValue(f"{what} must be a positive whole number of credits, got {credits!r}")


@dataclass(frozen=True, slots=True)
class PriceList:
    """Credits per SMS segment by destination country (ISO 3166-1 alpha-2, upper case).

    Immutable and versioned: a message records the version it was charged under, so a
    later price change never re-prices the past.
    """

    version: str
    default_credits: int  # for every country not listed
    credits: Mapping[str, int] = field(hash=False)  # a mapping proxy cannot be hashed
    currency_note: str

    def __post_init__(self) -> None:
        if not _VERSION.fullmatch(self.version):
            raise InvalidValue(f"price list version {self.version!r} is not a valid version")
        _check_credits(self.default_credits, "the default price")
        for country, credits in self.credits.items():
            # Only the shape is checked: the standard library has no ISO 3166 list.
            if not isinstance(country, str) or not _COUNTRY_CODE.fullmatch(country):
                raise InvalidValue(
                    f"{country!r} is not an upper-case ISO 3166-1 alpha-2 country code"
                )
            _check_credits(credits, f"the price for {country}")
        # A read-only copy, so neither the caller's dict nor a reader can change a version.
        object.__setattr__(self, "credits", MappingProxyType(dict(self.credits)))

    def credits_per_segment(self, country: str | None) -> int:
        """The price of one segment to `country`; the default when unknown or missing."""
        if country is None:
            return self.default_credits
        return self.credits.get(country.strip().upper(), self.default_credits)

    def with_overrides(self, overrides: Mapping[str, int], version_suffix: str) -> PriceList:
        """A new price list with `overrides` applied, under `<version>+<suffix>`.

        Per-deployment contract prices (Mitto's) replace the shipped approximations; the
        new version keeps charges made under either list distinguishable.
        """
        if not _SUFFIX.fullmatch(version_suffix):
            raise InvalidValue(
                f"version suffix {version_suffix!r} must be letters, digits, '.', '_' or '-'"
            )
        return PriceList(
            version=f"{self.version}+{version_suffix}",
            default_credits=self.default_credits,
            credits={**self.credits, **overrides},
            currency_note=self.currency_note,
        )


# Shipped defaults, in credits per segment, where 1 credit = 1/1000 US dollar (0.1 US cent).
# Source: approximations modelled on the public A2P SMS per-segment list prices of major
# providers (Twilio, Vonage, Plivo price pages) as of 2026, rounded to keep the relative
# tiers (US/CA cheapest, much of western Europe and Oceania dearest), with US/CA including
# the carrier pass-through fees. They are NOT our cost: every deployment must replace them
# with its Mitto contract prices via `with_overrides`.
# fmt: off
_DEFAULT_CREDITS = {
    # North America
    "US": 11, "CA": 12, "MX": 45,
    # Western and northern Europe
    "GB": 45, "IE": 75, "DE": 95, "FR": 85, "ES": 80, "IT": 85, "NL": 110, "BE": 100,
    "LU": 60, "AT": 100, "CH": 70, "SE": 60, "NO": 70, "DK": 50, "FI": 95, "IS": 50,
    "PT": 45, "GR": 70, "CY": 50, "MT": 40,
    # Central and eastern Europe
    "PL": 45, "CZ": 70, "SK": 80, "HU": 110, "RO": 75, "BG": 90, "HR": 80, "SI": 70,
    "EE": 70, "LV": 70, "LT": 50, "RS": 80, "UA": 80, "TR": 25,
    # Asia-Pacific
    "AU": 55, "NZ": 110, "JP": 75, "KR": 40, "SG": 50, "HK": 60, "TW": 50, "IN": 80,
    "MY": 50, "TH": 30, "PH": 25,
    # Latin America
    "BR": 30, "AR": 75, "CL": 70, "CO": 30, "PE": 70,
    # Middle East and Africa
    "AE": 45, "SA": 35, "QA": 35, "IL": 25, "ZA": 25, "EG": 100, "MA": 120, "NG": 150,
    "KE": 60,
}
# fmt: on

DEFAULT_PRICE_LIST = PriceList(
    version="2026-11-01",
    default_credits=100,
    credits=_DEFAULT_CREDITS,
    currency_note="1 credit = 0.001 USD; shipped approximations, override with contract prices",
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """The cost of one text to one country: `credits` = `segments` * `credits_per_segment`."""

    segments: int
    encoding: Encoding
    credits_per_segment: int
    credits: int
    country: str | None  # upper-cased; priced at the default when not listed


def estimate(text: str, country: str | None, prices: PriceList) -> Estimate:
    """Price `text` to `country`; raises InvalidValue for empty text (it cannot be sent)."""
    info = segment_text(text)
    per_segment = prices.credits_per_segment(country)
    return Estimate(
        segments=info.segments,
        encoding=info.encoding,
        credits_per_segment=per_segment,
        credits=info.segments * per_segment,
        country=country.strip().upper() if country else None,
    )


# --- Wallet ledger -------------------------------------------------------------------
# One wallet per shop, in credits. `balance` is what the shop can spend; `reserved` is
# held for messages on their way. Every change is a ledger entry with a unique reference,
# and the wallet is only ever moved by an entry.


class EntryKind(enum.StrEnum):
    TOPUP = "topup"
    GRANT = "grant"
    RESERVE = "reserve"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class InsufficientCredits(DomainError):
    code = "insufficient-credits"

    def __init__(self, *, needed: int, reference: str) -> None:
        super().__init__(f"the wallet cannot cover {needed} credits")
        self.needed = needed
        self.reference = reference


@dataclass(frozen=True, slots=True)
class WalletEntry:
    kind: EntryKind
    balance_delta: int
    reserved_delta: int
    reference: str
    reason: str
    source: str
    price_version: str | None = None

    def __post_init__(self) -> None:
        if not self.reference or len(self.reference) > 200:
            raise InvalidValue("a ledger entry needs a reference of at most 200 characters")
        if not self.reason.strip():
            raise InvalidValue("a ledger entry needs a reason")


# No one entry moves more (about $10M at list prices): a typo'd extra digit stops here
# instead of overflowing the ledger's bigint sums.
LARGEST_ENTRY = 1_000_000_000


def _positive(credits: int) -> int:
    if (
        not isinstance(credits, int)
        or isinstance(credits, bool)
        or not 0 < credits <= LARGEST_ENTRY
    ):
        raise InvalidValue(f"credits must be a whole number from 1 to {LARGEST_ENTRY:,}")
    return credits


def reserve(
    credits: int, reference: str, reason: str, source: str, price_version: str
) -> WalletEntry:
    c = _positive(credits)
    return WalletEntry(EntryKind.RESERVE, -c, c, reference, reason, source, price_version)


def capture(credits: int, reference: str, reason: str, source: str) -> WalletEntry:
    c = _positive(credits)
    return WalletEntry(EntryKind.CAPTURE, 0, -c, reference, reason, source)


def release(credits: int, reference: str, reason: str, source: str) -> WalletEntry:
    c = _positive(credits)
    return WalletEntry(EntryKind.RELEASE, c, -c, reference, reason, source)


def credit(kind: EntryKind, credits: int, reference: str, reason: str, source: str) -> WalletEntry:
    """Money in: a top-up, a grant or a refund."""
    if kind not in (EntryKind.TOPUP, EntryKind.GRANT, EntryKind.REFUND):
        raise InvalidValue(f"{kind.value} does not add credits")
    return WalletEntry(kind, _positive(credits), 0, reference, reason, source)


def adjustment(credits: int, reference: str, reason: str, source: str) -> WalletEntry:
    """A correction either way, by a person, with its reason on the record."""
    if not isinstance(credits, int) or credits == 0 or abs(credits) > LARGEST_ENTRY:
        raise InvalidValue(
            f"an adjustment moves a non-zero whole number of credits, at most {LARGEST_ENTRY:,}"
        )
    return WalletEntry(EntryKind.ADJUSTMENT, credits, 0, reference, reason, source)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry: WalletEntry
    balance_after: int
    reserved_after: int


# A new wallet's low-balance threshold (the wallets table's column default).
DEFAULT_LOW_BALANCE_THRESHOLD = 1000


@dataclass(frozen=True, slots=True)
class WalletBalance:
    balance: int
    reserved: int
    low_balance_threshold: int

    @property
    def low(self) -> bool:
        return self.balance < self.low_balance_threshold


# What a shop without a wallet row yet has: nothing to spend, and the threshold its
# wallet will be made with.
NO_WALLET = WalletBalance(0, 0, DEFAULT_LOW_BALANCE_THRESHOLD)


# --- Top-up packages -----------------------------------------------------------------
# Sold through Shopify Billing as one-time app purchases; money in minor units.


@dataclass(frozen=True, slots=True)
class TopUpPackage:
    id: str
    credits: int
    price_minor: int
    currency: str = "USD"

    @property
    def price_decimal(self) -> str:
        return f"{self.price_minor // 100}.{self.price_minor % 100:02d}"


TOPUP_PACKAGES = {
    p.id: p
    for p in (
        TopUpPackage("starter", credits=10_000, price_minor=1_000),
        TopUpPackage("growth", credits=55_000, price_minor=5_000),
        TopUpPackage("scale", credits=120_000, price_minor=10_000),
    )
}


@dataclass(frozen=True, slots=True)
class PendingTopUp:
    id: uuid.UUID
    purchase_id: str
    credits: int
