"""Keyset pagination on (time, id), mostly (created_at, id): opaque cursors, and the time
filters beside them."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from litestar.exceptions import ValidationException


def encode_cursor(at: datetime, key: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, key = raw.partition("|")
        return _utc(datetime.fromisoformat(at)), uuid.UUID(key)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise ValidationException(detail="cursor is not one this API returned") from None


def time_filter(name: str, value: datetime | None) -> datetime | None:
    """A `created_from`/`created_to` filter in UTC; one without a zone is ambiguous and one
    before the first UTC instant cannot be compared, so both are a 400 naming the filter."""
    if value is None:
        return None
    try:
        return _utc(value)
    except (ValueError, OverflowError):
        raise ValidationException(
            detail=f"{name} must be a time with a zone, e.g. 2026-11-01T00:00:00Z"
        ) from None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time without a zone")
    return value.astimezone(UTC)


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


K = TypeVar("K", bound=_Keyed)
T = TypeVar("T")


def page_of(found: Sequence[K], limit: int) -> tuple[list[K], str | None]:
    """`keyset_page` of rows keyed by (created_at, id)."""
    return keyset_page(found, limit, lambda item: (item.created_at, item.id))


def keyset_page(
    found: Sequence[T], limit: int, key: Callable[[T], tuple[datetime, uuid.UUID]]
) -> tuple[list[T], str | None]:
    """From `limit + 1` rows fetched: the page, and the cursor after it when more exist."""
    items = list(found[:limit])
    return items, encode_cursor(*key(items[-1])) if len(found) > limit else None
