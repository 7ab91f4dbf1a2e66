"""Short signed tokens for links and forms (unsubscribe, confirm, CSRF).

`purpose.payload.expiry.mac` in base64url pieces; the MAC key is derived per purpose, so
a token minted for one use never verifies for another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time


class TokenError(Exception):
    """Tampered, expired, malformed or minted for another purpose."""


class HmacTokens:
    def __init__(self, secret: bytes, *, clock: object = time) -> None:
        self._secret = secret
        self._clock = clock

    def _key(self, purpose: str) -> bytes:
        return hmac.new(self._secret, b"signed-token:" + purpose.encode(), hashlib.sha256).digest()

    def sign(self, purpose: str, payload: str, *, ttl_seconds: int) -> str:
        expiry = str(int(self._clock.time()) + ttl_seconds)  # type: ignore[attr-defined]
        body = f"{_b64(payload.encode())}.{expiry}"
        return f"{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: str, token: str) -> str:
        try:
            payload_b64, expiry, mac = token.split(".")
            body = f"{payload_b64}.{expiry}"
            # Bytes: compare_digest refuses a str with non-ASCII characters (a TypeError).
            if not hmac.compare_digest(mac.encode(), self._mac(purpose, body).encode()):
                raise TokenError("bad signature")
            if int(expiry) < self._clock.time():  # type: ignore[attr-defined]
                raise TokenError("expired")
            return base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise TokenError("malformed") from exc

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key(purpose), body.encode(), hashlib.sha256).digest()[:20])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
