"""Verification and signing of everything Shopify signs (contract: shared/contracts/shopify.md).

- OAuth / App URL query `hmac` (§1.3), shop domains (§1.4) and the `host` parameter (§1.2);
- App Bridge session tokens, HS256 JWTs (§2);
- webhook `X-Shopify-Hmac-Sha256` over the raw body (§3.2);
- app proxy `signature` (§5.2).

Every verifier takes `secrets`: the current client secret first, then the previous one while a
rotation is in progress; a match under any of them is accepted. Comparisons are constant-time.
Failures raise `SignatureError` whose `reason` is short and never contains secrets or tokens.
Pure stdlib, no I/O: the caller passes `now` so tests need no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

DEFAULT_SHOP_SUFFIXES: tuple[str, ...] = (".myshopify.com",)
DEFAULT_MAX_AGE_SECONDS = 90.0
SESSION_TOKEN_LEEWAY_SECONDS = 10.0

# Shopify never sends many parameters; the cap stops a huge query from costing much to parse.
_MAX_QUERY_FIELDS = 256
# Same handle length limit as `domain.shops.shop_domain`, so both accept the same domains.
_SHOP_HANDLE = r"[a-z0-9][a-z0-9-]{0,59}"
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_STANDARD_BASE64 = re.compile(r"[0-9A-Za-z+/]+={0,2}")
_BASE64URL_UNPADDED = re.compile(r"[0-9A-Za-z_-]+")
_HOSTNAME = re.compile(r"[a-z0-9][a-z0-9.-]*")
_HOST_SUFFIXES = (".myshopify.com", ".shopify.com")
# A repeated copy of these would make it ambiguous which value was meant (§5.2, JS library).
_PROXY_SINGLE_KEYS = (
    "shop",
    "signature",
    "timestamp",
    "hmac",
    "logged_in_customer_id",
    "path_prefix",
)
_OAUTH_SINGLE_KEYS = ("hmac", "shop", "timestamp")
_JWT_HEADER = {"alg": "HS256", "typ": "JWT"}


class SignatureError(Exception):
    """A Shopify signature, token or shop domain was rejected.

    `reason` is short and safe to log or return; it never includes secrets or full tokens.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """The verified Shopify-added parameters of an app proxy request (§5.1)."""

    shop: str
    logged_in_customer_id: str | None
    path_prefix: str
    timestamp: int
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionToken:
    """A verified App Bridge session token (§2)."""

    shop: str
    user_id: str | None
    session_id: str | None
    expires_at: int
    jti: str | None
    raw_claims: dict[str, Any] = field(default_factory=dict)


# --- shop domain and host (§1.2, §1.4) ---------------------------------------------------------


def normalize_shop_domain(
    value: str, *, allowed_suffixes: Sequence[str] = DEFAULT_SHOP_SUFFIXES
) -> str:
    """Return `value` as a bare lower-case shop domain, or raise `SignatureError`.

    Production allows only `.myshopify.com`; dev/test configs may pass other suffixes.
    """
    if not isinstance(value, str) or not allowed_suffixes:
        raise SignatureError("bad shop domain")
    candidate = value.strip().lower()
    for scheme in ("https://", "http://"):
        candidate = candidate.removeprefix(scheme)
    candidate = candidate.rstrip("/")
    suffixes = "|".join(re.escape(suffix.lower()) for suffix in allowed_suffixes)
    if not re.fullmatch(rf"{_SHOP_HANDLE}(?:{suffixes})", candidate):
        raise SignatureError("bad shop domain")
    return candidate


def decode_host(host: str) -> str:
    """Decode the unpadded base64 `host` parameter, e.g. `admin.shopify.com/store/sms-demo`."""
    if not isinstance(host, str) or not _STANDARD_BASE64.fullmatch(host):
        raise SignatureError("bad host")
    unpadded = host.rstrip("=")
    try:
        decoded = _b64decode(unpadded, urlsafe=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SignatureError("bad host") from exc
    hostname = decoded.split("/", 1)[0].lower()
    if not _HOSTNAME.fullmatch(hostname) or not hostname.endswith(_HOST_SUFFIXES):
        raise SignatureError("bad host")
    return decoded


# --- OAuth / App URL query hmac (§1.3) ---------------------------------------------------------


def verify_oauth_query(
    query_string: str,
    secrets: Sequence[str],
    *,
    now: float,
    max_age: float | None = DEFAULT_MAX_AGE_SECONDS,
    allowed_suffixes: Sequence[str] = DEFAULT_SHOP_SUFFIXES,
) -> dict[str, str]:
    """Verify the `hmac` of an App URL or OAuth callback query; return the other parameters.

    The returned dict has `shop` normalised. `max_age=None` skips the freshness window (for
    fixed test vectors) but `timestamp` must still be an integer. A repeated `hmac`, `shop` or
    `timestamp` is rejected; any other repeated key is signed in order of appearance and the
    returned dict keeps its last value.
    """
    keys = _check_secrets(secrets)
    pairs = _parse_query(query_string)
    _reject_repeated(pairs, _OAUTH_SINGLE_KEYS)
    provided = _single_value(pairs, "hmac", missing="missing hmac").lower()
    signed = sorted(
        ((k, v) for k, v in pairs if k not in ("hmac", "signature")), key=lambda kv: kv[0]
    )
    # Libraries disagree on value encoding; both messages are keyed, so accepting either is safe.
    messages = (_oauth_message_decoded(signed), _oauth_message_percent_encoded(signed))
    if not any(_hex_matches(provided, key, msg) for key in keys for msg in messages):
        raise SignatureError("bad signature")
    params = dict(signed)
    _check_fresh(params.get("timestamp"), now=now, max_age=max_age)
    # Only after the hmac check: an unsigned shop value must not even be looked at.
    params["shop"] = _require_shop(params, allowed_suffixes)
    return params


def sign_oauth_query(params: Mapping[str, str], secret: str) -> str:
    """Hex `hmac` for `params` (message variant A); `hmac`/`signature` keys are ignored."""
    signed = sorted(
        ((k, v) for k, v in params.items() if k not in ("hmac", "signature")),
        key=lambda kv: kv[0],
    )
    return _hex_hmac(_check_secrets([secret])[0], _oauth_message_decoded(signed))


def _oauth_message_decoded(pairs: Sequence[tuple[str, str]]) -> bytes:
    """Variant A (shopify_python_api): decoded values, escaping only the delimiters."""

    def pair(key: str, value: str) -> str:
        key = key.replace("%", "%25").replace("&", "%26").replace("=", "%3D")
        value = value.replace("%", "%25").replace("&", "%26")
        return f"{key}={value}"

    return "&".join(pair(k, v) for k, v in pairs).encode()


def _oauth_message_percent_encoded(pairs: Sequence[tuple[str, str]]) -> bytes:
    """Variant B (shopify-api JS since PR #3102): RFC 3986 encoding, space as `%20`."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()


# --- App proxy signature (§5.2) ----------------------------------------------------------------


def verify_app_proxy_query(
    query_string: str,
    secrets: Sequence[str],
    *,
    now: float,
    max_age: float | None = DEFAULT_MAX_AGE_SECONDS,
    allowed_suffixes: Sequence[str] = DEFAULT_SHOP_SUFFIXES,
) -> ProxyRequest:
    """Verify the `signature` of an app proxy request's URL query (the body is never signed)."""
    keys = _check_secrets(secrets)
    pairs = _parse_query(query_string)
    _reject_repeated(pairs, _PROXY_SINGLE_KEYS)
    provided = _single_value(pairs, "signature", missing="missing signature").lower()
    params = _group_values([(k, v) for k, v in pairs if k != "signature"])
    message = _proxy_message(params)
    if not any(_hex_matches(provided, key, message) for key in keys):
        raise SignatureError("bad signature")
    timestamp = _check_fresh(params.get("timestamp"), now=now, max_age=max_age)
    shop = _require_shop(params, allowed_suffixes)
    return ProxyRequest(
        shop=shop,
        logged_in_customer_id=params.get("logged_in_customer_id") or None,
        path_prefix=params.get("path_prefix", ""),
        timestamp=timestamp,
        params={**params, "shop": shop},
    )


def sign_app_proxy_query(pairs: Sequence[tuple[str, str]], secret: str) -> str:
    """Hex `signature` for decoded query `pairs`; a `signature` pair is ignored."""
    params = _group_values([(k, v) for k, v in pairs if k != "signature"])
    return _hex_hmac(_check_secrets([secret])[0], _proxy_message(params))


def _group_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """`extra=1&extra=2` becomes `{"extra": "1,2"}`, values kept in order of appearance."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return {key: ",".join(values) for key, values in grouped.items()}


def _proxy_message(params: Mapping[str, str]) -> bytes:
    # No separator between pairs: the classic mistake is joining with `&` as OAuth does.
    return "".join(sorted(f"{k}={v}" for k, v in params.items())).encode()


# --- Webhooks (§3.2) ---------------------------------------------------------------------------


def verify_webhook(body: bytes, header_value: str | None, secrets: Sequence[str]) -> None:
    """Check `X-Shopify-Hmac-Sha256` against the raw body bytes, exactly as received."""
    keys = _check_secrets(secrets)
    if not body:
        raise SignatureError("empty body")
    if not header_value or not header_value.strip():
        raise SignatureError("missing hmac")
    header = header_value.strip().encode("ascii", "replace")
    try:
        provided = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("bad signature") from exc
    # Non-canonical spellings (stray low bits in the last character) decode to the same bytes;
    # refuse them so that only the exact header Shopify sends is accepted (§4.4).
    if base64.b64encode(provided) != header:
        raise SignatureError("bad signature")
    expected = (hmac.new(key, body, hashlib.sha256).digest() for key in keys)
    if not any(hmac.compare_digest(provided, digest) for digest in expected):
        raise SignatureError("bad signature")


def sign_webhook(body: bytes, secret: str) -> str:
    """Base64 `X-Shopify-Hmac-Sha256` value for `body`."""
    key = _check_secrets([secret])[0]
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


# --- Session tokens (§2) -----------------------------------------------------------------------


def decode_session_token(
    token: str,
    secrets: Sequence[str],
    *,
    api_key: str,
    now: float,
    leeway: float = SESSION_TOKEN_LEEWAY_SECONDS,
    allowed_suffixes: Sequence[str] = DEFAULT_SHOP_SUFFIXES,
) -> SessionToken:
    """Verify an App Bridge session token in the contract's order and return its claims."""
    keys = _check_secrets(secrets)
    header_part, payload_part, signature_part = _split_jwt(token)
    header = _jwt_json(header_part)
    if header.get("alg") != "HS256":
        raise SignatureError("bad algorithm")
    signing_input = f"{header_part}.{payload_part}".encode("ascii")
    provided = signature_part.encode("ascii")
    if not any(hmac.compare_digest(provided, _jwt_signature(k, signing_input)) for k in keys):
        raise SignatureError("bad signature")
    claims = _jwt_json(payload_part)
    expires_at = _check_token_time(claims, now=now, leeway=leeway)
    if not isinstance(api_key, str) or not api_key or claims.get("aud") != api_key:
        raise SignatureError("wrong audience")
    shop = _token_shop(claims, allowed_suffixes)
    return SessionToken(
        shop=shop,
        user_id=_optional_str(claims.get("sub")),
        session_id=_optional_str(claims.get("sid")),
        expires_at=expires_at,
        jti=_optional_str(claims.get("jti")),
        raw_claims=claims,
    )


def encode_session_token(claims: Mapping[str, Any], secret: str) -> str:
    """An HS256 JWT with Shopify's header, for tests and the fake Shopify."""
    key = _check_secrets([secret])[0]
    header_part = _b64url_json(_JWT_HEADER)
    payload_part = _b64url_json(dict(claims))
    signing_input = f"{header_part}.{payload_part}".encode("ascii")
    return f"{header_part}.{payload_part}.{_jwt_signature(key, signing_input).decode('ascii')}"


def _split_jwt(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str) or not token.isascii():
        raise SignatureError("malformed token")
    parts = token.split(".")
    # An empty part is left to the later steps, so `alg: none` tokens fail as "bad algorithm".
    if len(parts) != 3:
        raise SignatureError("malformed token")
    return parts[0], parts[1], parts[2]


def _jwt_json(part: str) -> dict[str, Any]:
    if not _BASE64URL_UNPADDED.fullmatch(part):
        raise SignatureError("malformed token")
    try:
        value = json.loads(_b64decode(part, urlsafe=True))
    # JSONDecodeError and UnicodeError are ValueErrors; RecursionError is nesting past the
    # decoder's depth, in a header read before the signature is checked.
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise SignatureError("malformed token") from exc
    if not isinstance(value, dict):
        raise SignatureError("malformed token")
    return value


def _jwt_signature(key: bytes, signing_input: bytes) -> bytes:
    digest = hmac.new(key, signing_input, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


def _b64url_json(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _check_token_time(claims: Mapping[str, Any], *, now: float, leeway: float) -> int:
    """Apply the 10 s leeway: App Bridge often issues `nbf` slightly in the future."""
    exp = claims.get("exp")
    if not _is_number(exp):
        raise SignatureError("expired")
    nbf = claims.get("nbf")
    if nbf is not None and not _is_number(nbf):
        raise SignatureError("not yet valid")
    if nbf is not None and now < nbf - leeway:
        raise SignatureError("not yet valid")
    if now >= exp + leeway:
        raise SignatureError("expired")
    return int(exp)


def _token_shop(claims: Mapping[str, Any], allowed_suffixes: Sequence[str]) -> str:
    """`iss` and `dest` must share scheme and host; the shop is `dest`'s host."""
    iss, dest = claims.get("iss"), claims.get("dest")
    if not isinstance(iss, str) or not isinstance(dest, str):
        raise SignatureError("bad issuer")
    iss_url, dest_url = urlsplit(iss), urlsplit(dest)
    if dest_url.scheme.lower() != "https":
        raise SignatureError("bad issuer")
    iss_origin = (iss_url.scheme.lower(), iss_url.netloc.lower())
    if iss_origin != (dest_url.scheme.lower(), dest_url.netloc.lower()):
        raise SignatureError("bad issuer")
    return normalize_shop_domain(dest_url.netloc, allowed_suffixes=allowed_suffixes)


def _is_number(value: object) -> bool:
    # json.loads accepts NaN and Infinity; neither is a usable time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


# --- shared helpers ----------------------------------------------------------------------------


def _check_secrets(secrets: Sequence[str]) -> list[bytes]:
    """Reject misconfiguration loudly: a bare str would iterate as one-letter "secrets"."""
    if isinstance(secrets, str | bytes):
        raise TypeError("secrets must be a sequence of strings, not a single string")
    keys = [secret.encode("utf-8") for secret in secrets if secret]
    if not keys or len(keys) != len(secrets):
        raise ValueError("at least one non-empty Shopify client secret is required")
    return keys


def _parse_query(query_string: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            query_string.removeprefix("?"),
            keep_blank_values=True,
            max_num_fields=_MAX_QUERY_FIELDS,
        )
    except ValueError as exc:
        raise SignatureError("too many parameters") from exc


def _reject_repeated(pairs: Sequence[tuple[str, str]], keys: Sequence[str]) -> None:
    for key in keys:
        if sum(1 for k, _ in pairs if k == key) > 1:
            raise SignatureError("duplicate parameter")


def _single_value(pairs: Sequence[tuple[str, str]], key: str, *, missing: str) -> str:
    value = next((v for k, v in pairs if k == key), "")
    if not value:
        raise SignatureError(missing)
    return value


def _hex_hmac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _hex_matches(provided: str, key: bytes, message: bytes) -> bool:
    # Compare bytes: compare_digest raises TypeError on non-ASCII str input.
    return hmac.compare_digest(provided.encode("utf-8"), _hex_hmac(key, message).encode("ascii"))


def _check_fresh(value: str | None, *, now: float, max_age: float | None) -> int:
    if value is None or not _TIMESTAMP.fullmatch(value):
        raise SignatureError("bad timestamp")
    timestamp = int(value)
    if max_age is not None and abs(now - timestamp) > max_age:
        raise SignatureError("stale timestamp")
    return timestamp


def _require_shop(params: Mapping[str, str], allowed_suffixes: Sequence[str]) -> str:
    if "shop" not in params:
        raise SignatureError("missing shop")
    return normalize_shop_domain(params["shop"], allowed_suffixes=allowed_suffixes)


def _b64decode(data: str, *, urlsafe: bool) -> bytes:
    """Decode base64 whose `=` padding was stripped (JWT parts, Shopify's `host`)."""
    padded = data + "=" * (-len(data) % 4)
    if urlsafe:
        padded = padded.replace("-", "+").replace("_", "/")
    return base64.b64decode(padded, validate=True)
