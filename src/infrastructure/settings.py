"""Settings: read once from the environment into one typed, immutable object.

A bad value raises `SettingsError` naming the variable and what is expected. In
development, missing secrets are generated once into the data folder so the quick
start needs no configuration; in production they must be given.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from infrastructure.crypto.cipher import parse_key_ring

Environment = Literal["development", "test", "production"]
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRACE_EXPORTERS = ("none", "console", "otlp")
# Mitto's sender rule (contract sms.md §1): alphanumeric of 3-11 or a number of 3-14 digits.
SENDER_PATTERN = r"[A-Za-z0-9]{3,11}|\+?[0-9]{3,14}"
DEFAULT_SCOPES = (
    "read_customers,write_customers,read_orders,read_fulfillments,read_inventory,"
    "read_products,write_discounts,write_app_proxy"
)


class SettingsError(Exception):
    def __init__(self, variable: str, expected: str) -> None:
        super().__init__(f"{variable}: {expected}")
        self.variable = variable
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Settings:
    env: Environment
    data_dir: Path
    database_url: str | None
    app_url: str
    host: str
    port: int
    shopify_api_key: str
    shopify_api_secret: str
    shopify_api_secret_previous: str | None
    shopify_api_base: str
    shopify_webhooks_via: str
    shopify_scopes: tuple[str, ...]
    shopify_api_version: str
    encryption_keys: Mapping[str, bytes]
    blind_index_key: bytes
    mitto_api_key: str | None
    mitto_base_url: str
    mitto_webhook_secret: str
    sms_provider: Literal["mitto", "simulator"]
    sms_sender: str
    sms_rate_per_second: int
    sms_shop_rate_per_second: int
    simulator_report_delay_seconds: float
    log_level: str
    otel_traces_exporter: str
    otel_service_name: str
    max_request_body_bytes: int
    worker_heartbeat_seconds: float
    stalled_worker_seconds: float
    webhook_retention_days: int
    trial_credits: int
    price_overrides: Mapping[str, int]

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def shopify_secrets(self) -> tuple[str, ...]:
        """Current secret first; the previous one is still accepted during a rotation."""
        previous = (self.shopify_api_secret_previous,) if self.shopify_api_secret_previous else ()
        return (self.shopify_api_secret, *previous)

    def shopify_origin(self, shop: str) -> str:
        return self.shopify_api_base.replace("{shop}", shop)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    reader = _Reader(env)
    mode = reader.choice("BLOSSOM_ENV", ("development", "test", "production"), "development")
    data_dir = Path(env.get("BLOSSOM_DATA_DIR") or ".data").resolve()
    generated = {} if mode == "production" else _dev_secrets(data_dir)
    secret = reader.secret_reader(generated, required=mode == "production")

    keys_spec = secret("ENCRYPTION_KEYS")
    try:
        keys = parse_key_ring(keys_spec)
    except ValueError as exc:
        raise SettingsError("ENCRYPTION_KEYS", f"id:base64key[,id:base64key] ({exc})") from None
    blind_key = _b64_key("BLIND_INDEX_KEY", secret("BLIND_INDEX_KEY"))
    mitto_key = env.get("MITTO_API_KEY") or None
    provider = reader.choice(
        "SMS_PROVIDER", ("mitto", "simulator"), "mitto" if mitto_key else "simulator"
    )
    if provider == "mitto" and not mitto_key:
        raise SettingsError("MITTO_API_KEY", "a Mitto API key when SMS_PROVIDER=mitto")
    database_url = reader.postgres_url("DATABASE_URL")
    if database_url is None and mode == "production":
        # The embedded Postgres lives in one process's data folder: in a container it is
        # lost with the container, and an API and a worker would each get their own.
        raise SettingsError(
            "DATABASE_URL",
            "a postgresql:// URL in production (the embedded one is for development)",
        )

    app_url = reader.http_url("APP_URL", "http://127.0.0.1:8000")
    if mode == "production" and not app_url.startswith("https://"):
        # OAuth redirects, webhook subscriptions and the links in texts are built on it:
        # the local default would send Shopify and shoppers to 127.0.0.1.
        raise SettingsError("APP_URL", "the app's public https:// URL in production")

    return Settings(
        env=mode,
        data_dir=data_dir,
        database_url=database_url,
        app_url=app_url,
        host=env.get("HOST") or "127.0.0.1",
        port=reader.integer("PORT", 8000, 1, 65535),
        shopify_api_key=secret("SHOPIFY_API_KEY"),
        shopify_api_secret=secret("SHOPIFY_API_SECRET"),
        shopify_api_secret_previous=env.get("SHOPIFY_API_SECRET_PREVIOUS") or None,
        shopify_api_base=reader.api_base("SHOPIFY_API_BASE", "https://{shop}"),
        shopify_webhooks_via=reader.choice("SHOPIFY_WEBHOOKS_VIA", ("api", "toml"), "api"),
        shopify_scopes=tuple(
            s.strip() for s in (env.get("SHOPIFY_SCOPES") or DEFAULT_SCOPES).split(",") if s.strip()
        ),
        shopify_api_version=reader.pattern(
            "SHOPIFY_API_VERSION", r"\d{4}-(01|04|07|10)", "2026-07", "a version like 2026-07"
        ),
        encryption_keys=keys,
        blind_index_key=blind_key,
        mitto_api_key=mitto_key,
        mitto_base_url=reader.http_url("MITTO_BASE_URL", "https://rest.mittoapi.net"),
        mitto_webhook_secret=secret("MITTO_WEBHOOK_SECRET"),
        sms_provider=provider,  # type: ignore[arg-type]  # checked by reader.choice
        sms_sender=reader.pattern(
            "SMS_SENDER", SENDER_PATTERN, "Blossom", "3-11 letters/digits or a 3-14 digit number"
        ),
        sms_rate_per_second=reader.integer("SMS_RATE_PER_SECOND", 50, 0, 100_000),
        sms_shop_rate_per_second=reader.integer("SMS_SHOP_RATE_PER_SECOND", 10, 0, 100_000),
        simulator_report_delay_seconds=reader.number("SIMULATOR_REPORT_DELAY_SECONDS", 2, 0, 600),
        log_level=reader.choice("LOG_LEVEL", _LOG_LEVELS, "INFO", upper=True),
        otel_traces_exporter=reader.choice("OTEL_TRACES_EXPORTER", _TRACE_EXPORTERS, "none"),
        otel_service_name=env.get("OTEL_SERVICE_NAME") or "sms-blossom",
        max_request_body_bytes=reader.integer("MAX_REQUEST_BODY_BYTES", 1_048_576, 1024, 1 << 30),
        worker_heartbeat_seconds=reader.number("WORKER_HEARTBEAT_SECONDS", 10.0, 0.1, 600),
        stalled_worker_seconds=reader.number("STALLED_WORKER_SECONDS", 60.0, 0.5, 86_400),
        webhook_retention_days=reader.integer("WEBHOOK_RETENTION_DAYS", 7, 7, 365),
        trial_credits=reader.integer("TRIAL_CREDITS", 500, 0, 1_000_000),
        price_overrides=reader.prices("PRICE_OVERRIDES"),
    )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return value.strip() if value and value.strip() else None

    def choice(
        self, name: str, allowed: tuple[str, ...], default: str, *, upper: bool = False
    ) -> str:
        value = self._raw(name) or default
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise SettingsError(name, f"one of {', '.join(allowed)}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self._raw(name)
        try:
            value = int(raw) if raw is not None else default
        except ValueError:
            raise SettingsError(name, f"an integer between {low} and {high}") from None
        if not low <= value <= high:
            raise SettingsError(name, f"an integer between {low} and {high}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self._raw(name)
        try:
            value = float(raw) if raw is not None else default
        except ValueError:
            raise SettingsError(name, f"a number between {low} and {high}") from None
        if not low <= value <= high:
            raise SettingsError(name, f"a number between {low} and {high}")
        return value

    def pattern(self, name: str, regex: str, default: str, expected: str) -> str:
        value = self._raw(name) or default
        if not re.fullmatch(regex, value):
            raise SettingsError(name, expected)
        return value

    def http_url(self, name: str, default: str) -> str:
        value = self._raw(name) or default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(name, "an absolute http(s) URL")
        return value.rstrip("/")

    def api_base(self, name: str, default: str) -> str:
        value = self._raw(name) or default
        if "{shop}" not in value:
            raise SettingsError(name, "a URL template containing {shop}, e.g. https://{shop}")
        self.http_url(name, value.replace("{shop}", "shop.myshopify.com"))
        return value.rstrip("/")

    def prices(self, name: str) -> dict[str, int]:
        """`US:12,GB:40`: credits per segment by country, over the shipped price list."""
        raw = self._raw(name)
        if raw is None:
            return {}
        prices: dict[str, int] = {}
        for item in raw.split(","):
            country, _, credits = item.strip().partition(":")
            amount = credits.strip()
            # ASCII digits only ("²".isdigit() is true, int() refuses it), and no zero: the
            # price list refuses a free country, and it is only built at the first message,
            # so a zero let through here fails every text instead of the start.
            positive = re.fullmatch(r"0*[1-9][0-9]*", amount)
            if not re.fullmatch(r"[A-Za-z]{2}", country) or not positive:
                raise SettingsError(name, "COUNTRY:CREDITS pairs, e.g. US:12,GB:40")
            prices[country.upper()] = int(amount)
        return prices

    def postgres_url(self, name: str) -> str | None:
        value = self._raw(name)
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"):
            raise SettingsError(name, "a postgresql:// URL (unset it to use the embedded database)")
        return value

    def secret_reader(
        self, generated: Mapping[str, str], *, required: bool
    ) -> Callable[[str], str]:
        def read(name: str) -> str:
            value = self._raw(name) or generated.get(name)
            if value is None:
                kind = "required in production" if required else "required"
                raise SettingsError(name, f"{kind}; see .env.example")
            return value

        return read


def _b64_key(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=False)
    except ValueError:
        raise SettingsError(name, "base64 of at least 32 random bytes") from None
    if len(key) < 32:
        raise SettingsError(name, "base64 of at least 32 random bytes")
    return key


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets for development, generated on first use and kept in the data folder."""
    path = data_dir / "dev-secrets.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "ENCRYPTION_KEYS": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SHOPIFY_API_KEY": "dev-" + secrets.token_hex(8),
        "SHOPIFY_API_SECRET": secrets.token_hex(32),
        "MITTO_WEBHOOK_SECRET": secrets.token_urlsafe(32),
    }
    if path.exists():
        stored = json.loads(path.read_text())
        if values.keys() <= stored.keys():
            return stored
        values |= stored  # a secret added by a newer version joins the ones already kept
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)
    return values
