"""Values read out of Shopify's webhook payloads and headers, which never raise.

A delivery is signed, but a field can still be missing, odd or out of range; each reader
answers None for what it cannot use, so one bad field costs that field, not the event
(a failing handler would retry the whole delivery into the dead-letter view).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_LARGEST_ID = 2**63 - 1  # Postgres bigint
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}")
LOCALE_LENGTH = 16


def shopify_id(value: Any) -> int | None:
    """A positive id that fits a bigint (Shopify's ids are positive 64-bit integers)."""
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= _LARGEST_ID else None


def text(value: Any, *, longest: int | None = None) -> str | None:
    """A scalar as text, cut to `longest` characters; None when missing or empty."""
    if value in (None, "") or isinstance(value, dict | list):
        return None
    return str(value)[:longest]


def instant(value: Any) -> datetime | None:
    """An ISO 8601 time in UTC (one without a zone is read as UTC); None when unreadable or
    before the first UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def locale(value: Any) -> str | None:
    """A language tag such as `en` or `pt-BR`, at most 16 characters; None otherwise."""
    if isinstance(value, str) and len(value) <= LOCALE_LENGTH and _LOCALE.fullmatch(value):
        return value
    return None
