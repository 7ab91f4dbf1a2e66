"""Tolerant reading of Mitto's delivery reports and inbound messages (contract sms.md §1).

Neither shape is confirmed by Mitto's documentation, so every field is looked up under the
names seen in the wild, case-insensitively, from one mapping the HTTP layer merged out of
the query string, a form or a JSON body. Values may be strings (query, form) or JSON values;
a list (a repeated query key) counts as its first item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

PROVIDER_ID_KEYS = ("msgid", "messageid", "message_id", "id")
STATUS_KEYS = ("status", "deliverystatus", "delivery_status", "stat")
REFERENCE_KEYS = ("reference", "clientreference", "client_reference")
ERROR_KEYS = ("errorcode", "error_code", "err")
TIMESTAMP_KEYS = ("timestamp", "deliveredat", "donedate", "done_date", "date")
SENDER_KEYS = ("from", "sender", "msisdn", "source")
RECEIVER_KEYS = ("to", "receiver", "recipient", "destination", "number")
TEXT_KEYS = ("text", "message", "body", "content")
INBOUND_ID_KEYS = ("messageid", "msgid", "message_id", "id")
# Past this a unix time is in milliseconds (as seconds it would be after the year 5000).
MILLISECONDS_THRESHOLD = 100_000_000_000
# An inbound text's provider id is stored (String(100)) as its duplicate key, so a longer
# one is refused, not cut: cut ids could collide.
PROVIDER_ID_LENGTH = 100


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    provider_id: str | None
    reference: str | None
    status_word: str | None  # the provider's own word, e.g. "Delivered" or "UNDELIV"
    error_code: str | None
    reported_at: datetime | None  # UTC


@dataclass(frozen=True, slots=True)
class InboundSms:
    provider_id: str | None
    sender: str  # E.164 with the plus when the provider sent digits
    receiver: str
    text: str
    received_at: datetime | None  # UTC


def parse_delivery_report(fields: Mapping[str, object]) -> DeliveryReport:
    """Raises `ValueError` when the report names neither a provider id nor our reference."""
    folded = _fold(fields)
    provider_id = _first(folded, PROVIDER_ID_KEYS)
    reference = _first(folded, REFERENCE_KEYS)
    if provider_id is None and reference is None:
        raise ValueError(
            "delivery report names no message: expected msgid/messageId/id or reference, "
            f"got keys {sorted(fields)}"
        )
    return DeliveryReport(
        provider_id=provider_id,
        reference=reference,
        status_word=_first(folded, STATUS_KEYS),
        error_code=_first(folded, ERROR_KEYS),
        reported_at=_timestamp(folded),
    )


def parse_inbound(fields: Mapping[str, object]) -> InboundSms:
    """Raises `ValueError` when the sender, our number or the text is missing; an empty
    text is a text (someone can send nothing)."""
    folded = _fold(fields)
    sender = _first(folded, SENDER_KEYS)
    receiver = _first(folded, RECEIVER_KEYS)
    text = _present(folded, TEXT_KEYS)
    missing = [
        name
        for name, value in (("sender", sender), ("receiver", receiver), ("text", text))
        if value is None
    ]
    if sender is None or receiver is None or text is None:
        raise ValueError(f"inbound message lacks {', '.join(missing)}: got keys {sorted(fields)}")
    return InboundSms(
        provider_id=_provider_id(_first(folded, INBOUND_ID_KEYS)),
        sender=_e164(sender),
        receiver=_e164(receiver),
        text=text,
        received_at=_timestamp(folded),
    )


def parse_timestamp(value: object) -> datetime | None:
    """ISO 8601 (a naive one is UTC) or unix seconds (milliseconds tolerated), as UTC;
    None when unreadable."""
    value = _scalar(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_unix(float(value))
    text = str(value).strip()
    try:
        return _from_unix(float(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, before the first UTC instant
        return None


def _fold(fields: Mapping[str, object]) -> dict[str, object]:
    """Keys case-folded; of two keys differing only in case, the first one wins."""
    folded: dict[str, object] = {}
    for key, value in fields.items():
        folded.setdefault(str(key).casefold(), value)
    return folded


def _scalar(value: object) -> object:
    """A list's first item; text without NUL characters, which Postgres cannot store (a
    "STOP\0" must still be a STOP)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return value.replace("\x00", "") if isinstance(value, str) else value


def _present(folded: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    """The first key present, as text (empty allowed); None when no key is there."""
    for key in keys:
        if key in folded:
            value = _scalar(folded[key])
            if value is not None:
                return value if isinstance(value, str) else str(value)
    return None


def _first(folded: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    """The first key with a non-blank value, stripped."""
    for key in keys:
        value = _scalar(folded.get(key))
        if value is None or isinstance(value, dict | list):
            continue
        text = str(value).strip()
        if text:
            return text
    return None


def _timestamp(folded: Mapping[str, object]) -> datetime | None:
    for key in TIMESTAMP_KEYS:
        if key in folded:
            parsed = parse_timestamp(folded[key])
            if parsed is not None:
                return parsed
    return None


def _from_unix(seconds: float) -> datetime | None:
    if not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds >= MILLISECONDS_THRESHOLD:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _provider_id(value: str | None) -> str | None:
    if value is not None and len(value) > PROVIDER_ID_LENGTH:
        raise ValueError(f"message id is longer than {PROVIDER_ID_LENGTH} characters")
    return value


def _e164(number: str) -> str:
    """Mitto sends numbers as digits without the plus; alphanumeric senders stay as they are."""
    return "+" + number if number.isdigit() and number.isascii() else number
