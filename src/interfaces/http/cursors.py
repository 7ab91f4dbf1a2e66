"""Opaque cursors for keyset pagination on (created_at, id)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from litestar.exceptions import ValidationException


def encode_cursor(at: datetime, key: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, key = raw.partition("|")
        return datetime.fromisoformat(at), uuid.UUID(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationException(detail="cursor is not one this API returned") from None


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


K = TypeVar("K", bound=_Keyed)


def page_of(found: Sequence[K], limit: int) -> tuple[list[K], str | None]:
    """From `limit + 1` rows fetched: the page, and the cursor after it when more exist."""
    items = list(found[:limit])
    more = len(found) > limit
    return items, encode_cursor(items[-1].created_at, items[-1].id) if more else None
