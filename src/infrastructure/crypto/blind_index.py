"""Keyed digests for looking up encrypted values (e.g. a customer by phone number)."""

from __future__ import annotations

import hashlib
import hmac

_MIN_KEY_BYTES = 32


class HmacBlindIndex:
    """`BlindIndex` as HMAC-SHA256 over `purpose NUL value`, under a key of its own.

    The key must differ from the encryption keys so a leaked index key exposes no plaintext.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(
                f"blind index key is {len(key)} bytes; at least {_MIN_KEY_BYTES} are required"
            )
        self._key = bytes(key)

    def digest(self, normalized_value: str, *, purpose: str) -> str:
        # A NUL inside the purpose would let two (purpose, value) pairs share one message.
        if "\x00" in purpose:
            raise ValueError("blind index purpose must not contain NUL")
        message = f"{purpose}\x00{normalized_value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, normalized_value: str, purpose: str, digest: str) -> bool:
        expected = self.digest(normalized_value, purpose=purpose)
        return hmac.compare_digest(expected.encode(), digest.encode())
