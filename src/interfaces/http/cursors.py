"""Opaque cursors for keyset pagination on (created_at, id)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

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
