"""Messages: one SMS to one phone, from queueing to the carrier's last word (ARCHITECTURE §5).

A message's status only moves forward (contract sms.md §1): a late "sent" report never
undoes "delivered". Blocked statuses (and `skipped`, for a marketing text the shop's smart
sending held back) record why a gate stopped a message, so nothing a merchant asked for
silently vanishes.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.consent import ConsentState
from domain.contacts import PhoneNumber
from domain.errors import InvalidValue
from domain.messaging import Encoding
from domain.quiet_hours import ShopQuietHours, cap_for, subdivision_for


class MessageCategory(enum.StrEnum):
    """Which gates apply: marketing passes all; transactional (order and shipping
    updates) skips the caps and smart sending and, when the shop allows, quiet hours;
    system texts (keyword replies, opt-in and opt-out confirmations, test sends) skip
    every gate but consent redaction and are still recorded and charged."""

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"
    SYSTEM = "system"


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    BLOCKED_CONSENT = "blocked_consent"
    BLOCKED_CAP = "blocked_cap"
    BLOCKED_INSUFFICIENT_CREDITS = "blocked_insufficient_credits"
    BLOCKED_INVALID_NUMBER = "blocked_invalid_number"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"

    @property
    def blocked(self) -> bool:
        return self in BLOCKED

    @property
    def final(self) -> bool:
        return self in FINAL or self in BLOCKED


BLOCKED = frozenset(
    {
        MessageStatus.BLOCKED_CONSENT,
        MessageStatus.BLOCKED_CAP,
        MessageStatus.BLOCKED_INSUFFICIENT_CREDITS,
        MessageStatus.BLOCKED_INVALID_NUMBER,
        MessageStatus.DUPLICATE,
        MessageStatus.SKIPPED,
    }
)
FINAL = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.EXPIRED,
        MessageStatus.REJECTED,
    }
)
# How far along a message is; a report may only move it to a higher rank. `unknown`
# (a report we could not read, or a send whose outcome we could not learn) sits below
# `sent`: any readable report tells more, and a report of acceptance is what bills a
# send whose answer was lost.
_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.UNKNOWN: 2,
    MessageStatus.SENT: 3,
    **dict.fromkeys(FINAL, 4),
}

# Provider words for delivery states (sms.md §1), compared upper-cased.
_PROVIDER_STATUSES = {
    MessageStatus.DELIVERED: ("DELIVERED", "DELIVRD"),
    MessageStatus.UNDELIVERED: ("UNDELIVERABLE", "UNDELIVERED", "UNDELIV", "FAILURE", "FAILED"),
    MessageStatus.EXPIRED: ("EXPIRED",),
    MessageStatus.REJECTED: ("REJECTED", "REJECTD"),
    MessageStatus.SENT: ("SENT", "BUFFERED", "ACCEPTD", "ACCEPTED", "ENROUTE"),
}
_FROM_PROVIDER = {word: status for status, words in _PROVIDER_STATUSES.items() for word in words}


def status_from_provider(word: str | None) -> MessageStatus:
    """Our status for a provider's delivery word; `unknown` when we cannot read it."""
    return _FROM_PROVIDER.get((word or "").strip().upper(), MessageStatus.UNKNOWN)


def advances(current: MessageStatus, new: MessageStatus) -> bool:
    """Whether `new` moves a message forward from `current` (never back, never sideways
    between two final states: the first final word stands)."""
    if current.blocked or current in FINAL or new is MessageStatus.UNKNOWN:
        # A report we cannot read says nothing: above all not that a send in flight,
        # whose settle bills it, has an unknown fate.
        return False
    return _RANK[new] > _RANK[current]


@dataclass(frozen=True, slots=True)
class Message:
    id: uuid.UUID
    shop_id: uuid.UUID
    contact_id: uuid.UUID | None
    to: str  # E.164
    country: str | None
    text: str
    category: MessageCategory
    source: str  # what asked for it: "campaign:<id>", "automation:checkout", "keyword:stop" …
    status: MessageStatus
    encoding: Encoding
    segments: int
    credits: int
    price_version: str
    idempotency_key: str
    dedupe_key: str | None
    scheduled_at: datetime | None
    created_at: datetime
    provider_id: str | None = None
    error: str | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    finished_at: datetime | None = None  # when its status became final


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One line of a message's history."""

    status: MessageStatus
    at: datetime
    detail: str | None = None


DEFAULT_FOOTER = "Reply STOP to opt out"
# {contact} is the shop's support e-mail (or its domain): with a shop name and an address
# of usual length the reply stays within one GSM-7 segment.
DEFAULT_HELP = "{shop}: for help contact {contact} or reply to this text. Reply STOP to opt out."
STOP_CONFIRMATION = (
    "{shop}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
)
START_CONFIRMATION = "{shop}: you are subscribed again. Reply HELP for help, STOP to opt out."
OPT_IN_CONFIRMATION = (
    "{shop}: thanks, you are subscribed. Msg frequency varies. Msg & data rates may apply. "
    "Reply HELP for help, STOP to opt out."
)
DOUBLE_OPT_IN_REQUEST = (
    "{shop}: reply Y to confirm you want texts from us. Msg & data rates may apply. "
    "Reply STOP to opt out."
)

_REPLY_FIELDS = re.compile(r"\{(shop|contact)\}")


def fill_reply(template: str, *, shop: str, contact: str) -> str:
    """A keyword reply with the brand name and support contact in place, in one pass, so
    neither value can inject the other's placeholder."""
    values = {"shop": shop, "contact": contact}
    return _REPLY_FIELDS.sub(lambda match: values[match.group(1)], template)


# Smart sending may hold a contact's marketing texts at most a week apart; anything longer
# is a frequency cap, which is what `cap_count`/`cap_window_hours` are for.
SMART_SENDING_MAX_HOURS = 24 * 7


@dataclass(frozen=True, slots=True)
class SendingPolicy:
    """A shop's sending rules, from its settings; every field has the safe default.

    The cap defaults to three marketing texts per contact per 24 hours, the strictest
    state limit in the contract (Florida, Oklahoma, Maryland); a shop may raise its own,
    but never past its recipients' state caps (`marketing_limits`). Smart sending keeps
    one contact's marketing texts `smart_sending` apart (default 24 h, zero = off).
    """

    cap_count: int = 3
    cap_window: timedelta = timedelta(hours=24)
    smart_sending: timedelta = timedelta(hours=24)
    # Order and shipping updates wait out quiet hours like marketing until the shop opts
    # in (contract sms.md §4: they "may bypass quiet hours when the shop allows it").
    transactional_bypass_quiet_hours: bool = False
    transactional_requires_subscription: bool = False
    footer: str = DEFAULT_FOOTER
    help_text: str = DEFAULT_HELP
    sender: str | None = None
    opt_out_words: tuple[str, ...] = ()
    quiet_hours: ShopQuietHours = field(default_factory=ShopQuietHours)

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> SendingPolicy:
        raw = settings.get("messaging") or {}
        if not isinstance(raw, Mapping):
            raise InvalidValue("messaging settings must be an object")
        cap = _integer(raw, "cap_count", 3, 0, 100)
        hours = _integer(raw, "cap_window_hours", 24, 1, 24 * 30)
        cooldown = _integer(raw, "smart_sending_hours", 24, 0, SMART_SENDING_MAX_HOURS)
        words = raw.get("opt_out_words") or ()
        if not isinstance(words, list | tuple) or not all(
            isinstance(w, str) and "\x00" not in w for w in words
        ):
            raise InvalidValue("opt_out_words must be a list of words")
        return cls(
            cap_count=cap,
            cap_window=timedelta(hours=hours),
            smart_sending=timedelta(hours=cooldown),
            transactional_bypass_quiet_hours=bool(
                raw.get("transactional_bypass_quiet_hours", False)
            ),
            transactional_requires_subscription=bool(
                raw.get("transactional_requires_subscription", False)
            ),
            # Blank is no footer at all, and every marketing text needs its opt-out (sms.md
            # section 6): clearing the footer brings the default back.
            footer=_text(raw, "footer", DEFAULT_FOOTER, 80) or DEFAULT_FOOTER,
            help_text=_text(raw, "help_text", DEFAULT_HELP, 300),
            sender=_text(raw, "sender", "", 16) or None,
            opt_out_words=tuple(w.strip() for w in words if w.strip()),
            quiet_hours=ShopQuietHours.from_settings(settings),
        )


def _integer(raw: Mapping[str, object], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue(f"{key} must be a whole number from {low} to {high}")
    return value


def _text(raw: Mapping[str, object], key: str, default: str, longest: int) -> str:
    value = raw.get(key, default)
    # NUL is no character of a text message, and Postgres cannot store it.
    if not isinstance(value, str) or len(value) > longest or "\x00" in value:
        raise InvalidValue(f"{key} must be text of at most {longest} characters")
    return value.strip()


# An instruction a shopper can follow, not the word alone: "Nonstop deals" and "Stop by
# our store" tell nobody how to opt out.
_OPT_OUT_INSTRUCTION = re.compile(r"\b(?:reply|text|txt)\s+stop\b", re.IGNORECASE)


def compose(text: str, category: MessageCategory, brand: str, footer: str) -> str:
    """The text as sent: a marketing text names the brand and says how to opt out
    (contract sms.md §6); other texts go as written."""
    body = text.strip()
    if category is not MessageCategory.MARKETING:
        return body
    if brand and not _names(body, brand):
        body = f"{brand}: {body}"
    if footer and not _says_how_to_opt_out(body, footer):
        body = f"{body}\n{footer}"
    return body


def _names(text: str, brand: str) -> bool:
    """The brand as a word of its own and in its own case: written in lower case, or
    inside a longer word, the letters of "Sale" are a common word ("Summer sale",
    "Wholesale"), not the shop's name. Lookarounds rather than \\b, so a brand that
    starts or ends with punctuation ("H&M!") is found too."""
    return re.search(rf"(?<!\w){re.escape(brand)}(?!\w)", text) is not None


def _says_how_to_opt_out(text: str, footer: str) -> bool:
    # The shop's own footer may be worded any way (another language, an opt-out link).
    return bool(_OPT_OUT_INSTRUCTION.search(text)) or footer.casefold() in text.casefold()


def keeps_quiet_hours(category: MessageCategory, policy: SendingPolicy) -> bool:
    """Marketing always waits out quiet hours; transactional texts unless the shop lets
    them through; system texts (confirmations, keyword replies) never wait."""
    if category is MessageCategory.SYSTEM:
        return False
    return not (
        category is MessageCategory.TRANSACTIONAL and policy.transactional_bypass_quiet_hours
    )


def consent_allows(category: MessageCategory, state: ConsentState, policy: SendingPolicy) -> bool:
    """Marketing only to subscribed contacts; transactional texts to anyone who has not
    opted out (or only subscribed ones, per shop); system texts (confirmations, keyword
    replies) to anyone whose data still exists."""
    if state is ConsentState.REDACTED:
        return False
    if category is MessageCategory.MARKETING or (
        category is MessageCategory.TRANSACTIONAL and policy.transactional_requires_subscription
    ):
        return state is ConsentState.SUBSCRIBED
    if category is MessageCategory.TRANSACTIONAL:
        return state is not ConsentState.UNSUBSCRIBED
    return True


class Charge(enum.StrEnum):
    """Where a message's credits stand; each step is one ledger entry (`message:{id}:…`)."""

    NONE = "none"  # blocked before any reservation
    RESERVED = "reserved"
    CAPTURED = "captured"
    RELEASED = "released"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt made of a claimed message."""

    message_id: uuid.UUID
    status: MessageStatus
    charge: Charge
    provider_id: str | None = None
    error: str | None = None
    retry_at: datetime | None = None  # set when it goes back to `queued`


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the gates need to know about a contact."""

    contact_id: uuid.UUID | None  # None for a number that is not a contact
    phone: str | None  # None once redacted
    country: str | None
    timezones: tuple[str, ...]  # quiet hours hold in all of them; () leaves it to the shop's
    consent_state: ConsentState
    phone_invalid: bool = False  # the provider refused this number for good

    @classmethod
    def number(cls, phone: PhoneNumber) -> Recipient:
        """A number that is not a contact: a test send, a reply to a stranger's HELP."""
        return cls(None, phone.e164, phone.region, phone.timezones, ConsentState.UNKNOWN)

    @property
    def subdivision(self) -> str | None:
        """The recipient's US state ("US-FL") as its area code tells, for state rules."""
        return subdivision_for(self.phone or "")


@dataclass(frozen=True, slots=True)
class MarketingLimit:
    """At most `count` marketing texts to one contact within any `window`; a text past it
    is recorded as `status`, with `reason`."""

    count: int
    window: timedelta
    status: MessageStatus
    reason: str


def marketing_limits(policy: SendingPolicy, recipient: Recipient) -> tuple[MarketingLimit, ...]:
    """The limits a marketing text to `recipient` must pass, the first reached deciding its
    status: the shop's cap, then the cap of the recipient's jurisdiction, which holds
    whatever the shop's says, then the shop's smart sending (sms.md §5). A cap blocks; smart
    sending only skips, as it is the shop's courtesy and no rule."""
    limits = [_cap_limit(policy.cap_count, policy.cap_window, "")]
    legal = cap_for(recipient.country, recipient.subdivision)
    if legal is not None:
        limits.append(_cap_limit(legal.count, legal.window, " in the recipient's jurisdiction"))
    if policy.smart_sending:
        reason = f"smart sending: another marketing text within {_hours(policy.smart_sending)} h"
        limits.append(MarketingLimit(1, policy.smart_sending, MessageStatus.SKIPPED, reason))
    return tuple(limits)


def _cap_limit(count: int, window: timedelta, where: str) -> MarketingLimit:
    reason = f"cap of {count} marketing texts per {_hours(window)} h{where} reached"
    return MarketingLimit(count, window, MessageStatus.BLOCKED_CAP, reason)


def _hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)


@dataclass(frozen=True, slots=True)
class InboundText:
    id: uuid.UUID
    shop_id: uuid.UUID
    contact_id: uuid.UUID | None
    provider_id: str | None
    sender: str
    receiver: str
    text: str
    keyword: str
    received_at: datetime
