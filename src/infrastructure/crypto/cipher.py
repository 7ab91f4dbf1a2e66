"""AES-256-GCM encryption of PII and secrets at rest, under a rotating key ring.

Tokens look like `v1:<key id>:<base64url(nonce + ciphertext + tag)>`, so each one names the
key that sealed it and old keys can stay in the ring until every token has been rotated.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_KEY_ID_RULE = "1-32 characters of A-Z a-z 0-9 _ -"
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class DecryptionError(Exception):
    """A token could not be decrypted: unknown key, tampering, wrong context or malformed.

    Messages never include the token, the plaintext or key material.
    """


class AesGcmCipher:
    """`Cipher` over an ordered key ring; the last key is the newest and seals new tokens."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        nonce_factory: Callable[[], bytes] | None = None,
    ) -> None:
        if not keys:
            raise ValueError("key ring is empty; at least one key is required")
        self._aeads: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            _check_key(key_id, key)
            self._aeads[key_id] = AESGCM(bytes(key))
        self._newest = next(reversed(self._aeads))
        self._nonce_factory = nonce_factory or _random_nonce

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        nonce = self._nonce_factory()
        if len(nonce) != _NONCE_BYTES:
            raise ValueError(f"nonce factory returned {len(nonce)} bytes; need {_NONCE_BYTES}")
        sealed = self._aeads[self._newest].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}:{self._newest}:{_b64url_encode(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        key_id, nonce, sealed = self._parse(token)
        try:
            plaintext = self._aeads[key_id].decrypt(nonce, sealed, context.encode())
            return plaintext.decode()
        except (InvalidTag, UnicodeDecodeError):
            # `from None`: a UnicodeDecodeError would carry plaintext bytes in its message.
            raise DecryptionError(
                "token failed authentication: tampered, or sealed for another key or context"
            ) from None

    def needs_rotation(self, token: str) -> bool:
        """True when `token` names an older key; raises DecryptionError if it is unusable."""
        key_id, _, _ = self._parse(token)
        return key_id != self._newest

    def reencrypt(self, token: str, *, context: str = "") -> str:
        return self.encrypt(self.decrypt(token, context=context), context=context)

    def _parse(self, token: str) -> tuple[str, bytes, bytes]:
        parts = token.split(":")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise DecryptionError(f"token is malformed: expected {_VERSION}:<key id>:<payload>")
        _, key_id, payload = parts
        if key_id not in self._aeads:
            raise DecryptionError("token names a key that is not in the key ring")
        raw = _b64url_decode_canonical(payload)
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise DecryptionError("token is malformed: payload too short")
        return key_id, raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]


def parse_key_ring(spec: str) -> dict[str, bytes]:
    """Parse the environment format `id1:base64key1,id2:base64key2`, newest key last.

    Keys may use standard or URL-safe base64, padded or not. Errors name the entry and key
    id but never echo key material.
    """
    entries = [entry.strip() for entry in spec.split(",")]
    if entries == [""]:
        raise ValueError("key ring is empty; expected id1:base64key1,id2:base64key2")
    ring: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        key_id, separator, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not separator:
            raise ValueError(f"key ring entry {position} is not in <id>:<base64 key> form")
        if not _KEY_ID.fullmatch(key_id):
            # The id is not echoed: a malformed entry may have the key where the id belongs.
            raise ValueError(f"key ring entry {position} has an invalid key id; use {_KEY_ID_RULE}")
        if key_id in ring:
            raise ValueError(f"key id {key_id!r} appears more than once in the key ring")
        ring[key_id] = _decode_key(key_id, encoded.strip())
        _check_key(key_id, ring[key_id])
    return ring


def _check_key(key_id: str, key: bytes) -> None:
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"invalid key id in key ring; use {_KEY_ID_RULE}")
    if len(key) != _KEY_BYTES:
        raise ValueError(
            f"key {key_id!r} is {len(key)} bytes; AES-256-GCM needs exactly {_KEY_BYTES}"
        )


def _decode_key(key_id: str, encoded: str) -> bytes:
    standard = encoded.translate(_URLSAFE_TO_STANDARD)
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        raise ValueError(f"key {key_id!r} is not valid base64") from None


def _random_nonce() -> bytes:
    return os.urandom(_NONCE_BYTES)


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode_canonical(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise DecryptionError("token is malformed: payload is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise DecryptionError("token is malformed: payload is not base64url") from None
    # The last base64 character can carry unused bits; insisting on the canonical encoding
    # makes every edit to a token fail, not only those that reach the sealed bytes.
    if _b64url_encode(raw) != text:
        raise DecryptionError("token is malformed: payload is not canonical base64url")
    return raw
