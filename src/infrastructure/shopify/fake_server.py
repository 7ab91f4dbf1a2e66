"""A loopback stand-in for Shopify: OAuth token endpoint, Admin GraphQL and a webhook sender.

It speaks the shared Shopify contract (§1.7-1.9 tokens, §3.1-3.2 webhooks, §6.0-6.4 GraphQL),
including its failure modes, so tests, benchmarks and `blossom demo` exercise real HTTP.
Every Shopify path is prefixed by the shop domain, matching `SHOPIFY_API_BASE` set to
`api_base` (`http://127.0.0.1:PORT/{shop}`).

The fake is self-contained on purpose: it imports no other project module, so it checks the
app's Shopify code instead of sharing its bugs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import re
import secrets
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import responses
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import uvicorn
from litestar import Litestar, MediaType, Request, Response, post
from litestar.types import ASGIApp, Message, Receive, Scope, Send

EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
SESSION_JWT_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_ACCESS_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
UNAUTHORIZED_MESSAGE = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
DEFAULT_SCOPES = "read_customers,write_customers,read_orders,write_discounts"
THROTTLED_ERROR = {
    "message": "Throttled",
    "extensions": {
        "code": "THROTTLED",
        "documentation": "https://shopify.dev/api/usage/rate-limits",
    },
}
# Same leeway as all three official libraries (§2).
JWT_LEEWAY_SECONDS = 10
# §1.8 recovery: the previous refresh token stays usable at most 30 days from first use.
RECOVERY_WINDOW_SECONDS = 30 * 86400
# Mutations first: the root-field substring match must not let `shop` shadow them.
MUTATIONS = (
    "webhookSubscriptionCreate",
    "customerSmsMarketingConsentUpdate",
    "discountCodeBasicCreate",
    "discountCodeBasicUpdate",
    "appPurchaseOneTimeCreate",
)
QUERIES = ("shop", "node")
# REDACTED is Shopify-owned and read-only (§6.1), so a write of it is refused.
WRITABLE_SMS_STATES = frozenset({"NOT_SUBSCRIBED", "PENDING", "SUBSCRIBED", "UNSUBSCRIBED"})
DISCOUNT_REQUIRED_ON_CREATE = ("title", "code", "startsAt", "customerGets")
STARTUP_POLLS = 500

Resolver = Callable[["FakeShop", dict[str, Any]], dict[str, Any]]


@dataclass
class FakeShop:
    """One installed shop and everything the fake remembers about it."""

    domain: str
    id: int
    name: str
    currency: str = "USD"
    timezone: str = "America/New_York"
    country: str = "US"
    plan: str = "Basic"
    # token -> expires_at (clock seconds), None for a non-expiring offline token.
    access_tokens: dict[str, float | None] = field(default_factory=dict)
    refresh_token: str | None = None
    refresh_token_expires_at: float = 0.0
    previous_refresh_token: str | None = None
    previous_refresh_token_expires_at: float = 0.0
    # Issued with the current refresh token; its first use ends the recovery window.
    replacement_access_token: str | None = None
    webhook_subscriptions: list[dict[str, Any]] = field(default_factory=list)
    # Topics (GraphQL names) Shopify refuses, as it does protected customer data topics
    # until the app is approved for them.
    refused_topics: set[str] = field(default_factory=set)
    consent_updates: list[dict[str, Any]] = field(default_factory=list)
    discounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    purchases: list[dict[str, Any]] = field(default_factory=list)

    def access_token_valid(self, token: str, now: float) -> bool:
        if token not in self.access_tokens:
            return False
        expires_at = self.access_tokens[token]
        return expires_at is None or now < expires_at

    def accepts_refresh_token(self, token: str, now: float) -> bool:
        if token and token == self.refresh_token:
            return now < self.refresh_token_expires_at
        recoverable = bool(token) and token == self.previous_refresh_token
        return recoverable and now < self.previous_refresh_token_expires_at


@dataclass
class LeakyBucket:
    """The per-shop GraphQL cost bucket of §6.4; `available` is as of `updated_at`."""

    size: float
    restore_rate: float
    available: float
    updated_at: float

    def restore(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated_at)
        self.available = min(self.size, self.available + elapsed * self.restore_rate)
        self.updated_at = now
        return self.available

    def cost_extension(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.size,
                "currentlyAvailable": self.available,
                "restoreRate": self.restore_rate,
            },
        }


@dataclass
class _Queued:
    path_contains: str
    remaining: int


@dataclass
class _Failure(_Queued):
    status: int
    retry_after: float | None
    body: Any

    def response(self) -> Response:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if isinstance(self.body, bytes | str):
            return Response(
                self.body, status_code=self.status, headers=headers, media_type=MediaType.TEXT
            )
        phrase = responses.get(self.status, "Error")
        body = {"errors": phrase} if self.body is None else self.body
        return _json(self.status, body, headers)


@dataclass
class _Delay(_Queued):
    seconds: float


Queued = TypeVar("Queued", bound=_Queued)


class FakeShopify:
    """A real HTTP server on 127.0.0.1 that answers like Shopify; state is plain attributes."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        api_version: str = "2026-07",
        access_token_ttl: int = 3600,
        refresh_token_ttl: int = 90 * 86400,
        bucket_size: float = 2000.0,
        restore_rate: float = 100.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.api_version = api_version
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self.clock = clock
        self.granted_scopes = DEFAULT_SCOPES
        self.shops: dict[str, FakeShop] = {}
        self.codes: dict[str, str] = {}  # one-time authorization code -> shop domain
        self.buckets: dict[str, LeakyBucket] = {}
        self.refresh_count: Counter[str] = Counter()
        self.token_exchanges: Counter[str] = Counter()
        self.graphql_calls: Counter[str] = Counter()
        self.throttled_count: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self._resolvers: dict[str, Resolver] = {
            "shop": self._shop_query,
            "webhookSubscriptionCreate": self._webhook_subscription_create,
            "customerSmsMarketingConsentUpdate": self._consent_update,
            "discountCodeBasicCreate": self._discount_create,
            "discountCodeBasicUpdate": self._discount_update,
            "appPurchaseOneTimeCreate": self._purchase_create,
            "node": self._node_query,
        }
        self.costs: dict[str, int] = {name: 1 for name in QUERIES} | {
            name: 10 for name in MUTATIONS
        }
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._shop_ids = itertools.count(1)
        self._gids = itertools.count(1)
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeShopify is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """The `SHOPIFY_API_BASE` template that points the app at this fake."""
        return f"{self.base_url}/{{shop}}"

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("FakeShopify is already started")
        # Binding ourselves gives a free port known before uvicorn reports it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._record_requests(self._build_app()),
            log_level="warning",
            access_log=False,
            log_config=None,
            lifespan="off",
        )
        self._stopping = asyncio.Event()
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await self._wait_started()

    async def _wait_started(self) -> None:
        assert self._server is not None and self._task is not None
        for _ in range(STARTUP_POLLS):
            if self._server.started:
                return
            if self._task.done():
                break
            await asyncio.sleep(0.01)
        await self.stop()  # re-raises the server's own startup error, if any
        raise RuntimeError("FakeShopify did not start")

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._stopping.set()  # cuts delayed requests short so shutdown need not wait for them
        self._server.should_exit = True
        task, self._task, self._server = self._task, None, None
        await task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- test helpers ------------------------------------------------------------------------

    def add_shop(self, domain: str, **fields: Any) -> FakeShop:
        shop = FakeShop(
            **{"domain": domain, "id": next(self._shop_ids), "name": domain.split(".")[0], **fields}
        )
        self.shops[domain] = shop
        return shop

    def issue_code(self, shop: str) -> str:
        """A one-time authorization code, as Shopify appends to the OAuth callback."""
        self._shop(shop)
        code = secrets.token_hex(16)
        self.codes[code] = shop
        return code

    def issue_legacy_token(self, shop: str) -> str:
        """A non-expiring offline token, as issued before expiring tokens (§1.8)."""
        token = _new_token("shpat")
        self._shop(shop).access_tokens[token] = None
        return token

    def expire_access_token(self, shop: str) -> None:
        self.set_access_token_expiry(shop, self.clock())

    def set_access_token_expiry(self, shop: str, expires_at: float | None) -> None:
        """Applies to every access token of the shop, legacy ones included."""
        tokens = self.shops[shop].access_tokens
        for token in tokens:
            tokens[token] = expires_at

    def currently_available(self, shop: str) -> float:
        return self._bucket(shop).restore(self.clock())

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        retry_after: float | None = None,
        body: Any = None,
        path_contains: str = "graphql",
    ) -> None:
        """Answer the next `count` matching requests with `status` (bytes/str bodies go raw)."""
        self._failures.append(_Failure(path_contains, count, status, retry_after, body))

    def delay_next(self, seconds: float, count: int = 1, *, path_contains: str = "graphql") -> None:
        self._delays.append(_Delay(path_contains, count, seconds))

    # -- HTTP plumbing -----------------------------------------------------------------------

    def _build_app(self) -> Litestar:
        @post("/{shop:str}/admin/oauth/access_token")
        async def access_token(request: Request) -> Response:
            shop = request.path_params["shop"]
            return self._token_endpoint(shop, await request.body(), request.headers)

        @post("/{shop:str}/admin/api/{version:str}/graphql.json")
        async def graphql(request: Request) -> Response:
            shop, version = request.path_params["shop"], request.path_params["version"]
            token = request.headers.get("x-shopify-access-token", "")
            return self._graphql(shop, version, token, await request.body())

        return Litestar(
            [access_token, graphql],
            before_request=self._before_request,
            logging_config=None,
            openapi_config=None,
        )

    def _record_requests(self, app: ASGIApp) -> ASGIApp:
        """Logs every request, unrouted ones included, with the status it got."""

        async def record(scope: Scope, receive: Receive, send: Send) -> None:
            entry = {
                "method": scope["method"],
                "path": scope["path"],
                "time": time.monotonic(),
                "status": None,
            }
            self.requests.append(entry)

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    entry["status"] = message["status"]
                await send(message)

            await app(scope, receive, capture)

        return record

    async def _before_request(self, request: Request) -> Response | None:
        path = request.url.path
        delay = _take(self._delays, path)
        if delay is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay.seconds):
                    await self._stopping.wait()
        failure = _take(self._failures, path)
        return None if failure is None else failure.response()

    def _shop(self, domain: str) -> FakeShop:
        return self.shops.get(domain) or self.add_shop(domain)

    def _bucket(self, domain: str) -> LeakyBucket:
        if domain not in self.buckets:
            self.buckets[domain] = LeakyBucket(
                self.bucket_size, self.restore_rate, self.bucket_size, self.clock()
            )
        return self.buckets[domain]

    # -- token endpoint (§1.7-1.9) -----------------------------------------------------------

    def _token_endpoint(self, shop: str, body: bytes, headers: Mapping[str, str]) -> Response:
        try:
            form = _parse_form(body, headers.get("content-type", ""))
        except ValueError:
            return _oauth_error("invalid_request", "The request body could not be parsed")
        if form.get("client_id") != self.api_key or form.get("client_secret") != self.api_secret:
            return _oauth_error("invalid_client", "Client authentication failed", status=401)
        expiring = form.get("expiring", "").lower() in {"1", "true"}
        grant_type = form.get("grant_type", "authorization_code")
        if grant_type == "authorization_code" and "code" in form:
            return self._code_grant(shop, form["code"], expiring)
        if grant_type == "refresh_token":
            return self._refresh_grant(shop, form.get("refresh_token", ""))
        if grant_type == EXCHANGE_GRANT_TYPE:
            return self._token_exchange(shop, form, expiring)
        return _oauth_error("unsupported_grant_type", f"Unsupported grant: {grant_type}")

    def _code_grant(self, shop: str, code: str, expiring: bool) -> Response:
        if self.codes.pop(code, None) != shop:
            return _oauth_error(
                "invalid_request", "The authorization code was not found or was already used"
            )
        return _json(200, self._issue(self.shops[shop], expiring=expiring))

    def _refresh_grant(self, domain: str, refresh_token: str) -> Response:
        shop = self.shops.get(domain)
        now = self.clock()
        if shop is None or not shop.accepts_refresh_token(refresh_token, now):
            return _oauth_error("invalid_grant", "The refresh token is invalid or expired")
        self.refresh_count[domain] += 1
        return _json(200, self._rotate(shop, refresh_token, now))

    def _token_exchange(self, shop: str, form: dict[str, str], expiring: bool) -> Response:
        if form.get("requested_token_type") != OFFLINE_ACCESS_TYPE:
            return _oauth_error("invalid_request", "Only offline access tokens are supported")
        subject_type = form.get("subject_token_type")
        if subject_type == SESSION_JWT_TYPE:
            return self._exchange_session_token(shop, form.get("subject_token", ""), expiring)
        if subject_type == OFFLINE_ACCESS_TYPE:
            return self._migrate_legacy_token(shop, form.get("subject_token", ""), expiring)
        return _oauth_error("invalid_request", f"Unsupported subject_token_type: {subject_type}")

    def _exchange_session_token(self, domain: str, session_token: str, expiring: bool) -> Response:
        if not self._session_token_valid(session_token, domain):
            return _oauth_error("invalid_subject_token", "The session token is invalid or expired")
        self.token_exchanges[domain] += 1
        return _json(200, self._issue(self._shop(domain), expiring=expiring))

    def _migrate_legacy_token(self, domain: str, legacy_token: str, expiring: bool) -> Response:
        shop = self.shops.get(domain)
        legacy = (
            shop is not None
            and legacy_token in shop.access_tokens
            and (shop.access_tokens[legacy_token] is None)
        )
        if shop is None or not legacy or not expiring:
            return _oauth_error("invalid_subject_token", "Not a non-expiring offline token")
        del shop.access_tokens[legacy_token]  # the migration is one-way
        self.token_exchanges[domain] += 1
        return _json(200, self._issue(shop, expiring=True))

    def _session_token_valid(self, token: str, shop: str) -> bool:
        claims = _verified_jwt_claims(token, self.api_secret)
        if claims is None:
            return False
        now = self.clock()
        try:
            timely = (
                float(claims["nbf"]) - JWT_LEEWAY_SECONDS
                <= now
                < (float(claims["exp"]) + JWT_LEEWAY_SECONDS)
            )
        except (KeyError, TypeError, ValueError):
            return False
        return (
            timely
            and claims.get("aud") == self.api_key
            and claims.get("dest") == f"https://{shop}"
            and urlsplit(str(claims.get("iss", ""))).netloc == shop
        )

    def _issue(self, shop: FakeShop, *, expiring: bool) -> dict[str, Any]:
        now = self.clock()
        token = _new_token("shpat")
        if not expiring:
            shop.access_tokens[token] = None
            return {"access_token": token, "scope": self.granted_scopes}
        shop.access_tokens[token] = now + self.access_token_ttl
        shop.refresh_token = _new_token("shprt")
        shop.refresh_token_expires_at = now + self.refresh_token_ttl
        shop.previous_refresh_token = None
        shop.replacement_access_token = token
        return {
            "access_token": token,
            "scope": self.granted_scopes,
            "expires_in": self.access_token_ttl,
            "refresh_token": shop.refresh_token,
            "refresh_token_expires_in": self.refresh_token_ttl,
        }

    def _rotate(self, shop: FakeShop, presented: str, now: float) -> dict[str, Any]:
        # The token just presented becomes the recoverable one; a retried previous token
        # keeps its original window, which never extends past its own 90 days.
        if presented == shop.refresh_token:
            previous = (
                presented,
                min(shop.refresh_token_expires_at, now + RECOVERY_WINDOW_SECONDS),
            )
        else:
            previous = (shop.previous_refresh_token, shop.previous_refresh_token_expires_at)
        body = self._issue(shop, expiring=True)
        shop.previous_refresh_token, shop.previous_refresh_token_expires_at = previous
        return body

    # -- Admin GraphQL (§6) ------------------------------------------------------------------

    def _graphql(self, domain: str, version: str, token: str, body: bytes) -> Response:
        if version != self.api_version:
            return _json(404, {"errors": "Not Found"})
        shop = self._authenticate(domain, token)
        if shop is None:
            return _json(401, {"errors": UNAUTHORIZED_MESSAGE})
        self.graphql_calls[domain] += 1
        try:
            request = json.loads(body)
            query, variables = request["query"], request.get("variables") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return _json(400, {"errors": [{"message": "Expected a JSON body with a query"}]})
        operation = _operation(query) if isinstance(query, str) else None
        if operation is None:
            return _json(200, {"errors": [{"message": "unknown field"}]})
        return _json(200, self._execute(shop, operation, variables))

    def _authenticate(self, domain: str, token: str) -> FakeShop | None:
        shop = self.shops.get(domain)
        if shop is None or not shop.access_token_valid(token, self.clock()):
            return None
        if token == shop.replacement_access_token:
            shop.previous_refresh_token = shop.replacement_access_token = None
        return shop

    def _execute(self, shop: FakeShop, operation: str, variables: dict[str, Any]) -> dict[str, Any]:
        cost = self.costs[operation]
        bucket = self._bucket(shop.domain)
        if cost > bucket.restore(self.clock()):
            self.throttled_count[shop.domain] += 1
            return {
                "errors": [THROTTLED_ERROR],
                "extensions": {"cost": bucket.cost_extension(cost, None)},
            }
        bucket.available -= cost
        extensions = {"cost": bucket.cost_extension(cost, cost)}
        try:
            data = self._resolvers[operation](shop, variables)
        except (KeyError, TypeError):
            message = f"Variables are missing or invalid for {operation}"
            error = {"message": message, "extensions": {"code": "INVALID_VARIABLE"}}
            return {"errors": [error], "extensions": extensions}
        return {"data": data, "extensions": extensions}

    def _shop_query(self, shop: FakeShop, variables: dict[str, Any]) -> dict[str, Any]:
        return {
            "shop": {
                "id": f"gid://shopify/Shop/{shop.id}",
                "name": shop.name,
                "myshopifyDomain": shop.domain,
                "currencyCode": shop.currency,
                "ianaTimezone": shop.timezone,
                "billingAddress": {"countryCodeV2": shop.country},
                "plan": {"displayName": shop.plan},
            }
        }

    def _webhook_subscription_create(
        self, shop: FakeShop, variables: dict[str, Any]
    ) -> dict[str, Any]:
        subscription = {"topic": variables["topic"], "uri": variables["webhookSubscription"]["uri"]}
        if subscription["topic"] in shop.refused_topics:
            refused = {
                "field": ["webhookSubscription"],
                "message": "This app is not approved to subscribe to webhook topics containing "
                "protected customer data.",
            }
            return _mutation(
                "webhookSubscriptionCreate", webhookSubscription=None, userErrors=[refused]
            )
        if subscription in shop.webhook_subscriptions:
            taken = {
                "field": ["webhookSubscription", "callbackUrl"],
                "message": "Address for this topic has already been taken",
                "code": "TAKEN",
            }
            return _mutation(
                "webhookSubscriptionCreate", webhookSubscription=None, userErrors=[taken]
            )
        shop.webhook_subscriptions.append(subscription)
        created = {"id": f"gid://shopify/WebhookSubscription/{next(self._gids)}", **subscription}
        return _mutation("webhookSubscriptionCreate", webhookSubscription=created)

    def _consent_update(self, shop: FakeShop, variables: dict[str, Any]) -> dict[str, Any]:
        update = variables["input"]
        consent = update["smsMarketingConsent"]
        if consent["marketingState"] not in WRITABLE_SMS_STATES:
            invalid = {
                "field": ["input", "smsMarketingConsent", "marketingState"],
                "message": f"Marketing state {consent['marketingState']} cannot be set",
                "code": "INVALID",
            }
            return _mutation(
                "customerSmsMarketingConsentUpdate", customer=None, userErrors=[invalid]
            )
        customer = {
            "id": update["customerId"],
            "phone": None,
            "smsMarketingConsent": {
                "marketingState": consent["marketingState"],
                "marketingOptInLevel": consent.get("marketingOptInLevel"),
                "consentUpdatedAt": consent.get("consentUpdatedAt") or _iso(self.clock()),
                "consentCollectedFrom": "OTHER",
            },
        }
        shop.consent_updates.append(update)
        return _mutation("customerSmsMarketingConsentUpdate", customer=customer)

    def _discount_create(self, shop: FakeShop, variables: dict[str, Any]) -> dict[str, Any]:
        discount = variables["basicCodeDiscount"]
        errors = _missing_discount_fields(discount) or _code_taken(shop, discount["code"])
        if errors:
            return _mutation("discountCodeBasicCreate", codeDiscountNode=None, userErrors=errors)
        created = {"id": f"gid://shopify/DiscountCodeNode/{next(self._gids)}", **discount}
        shop.discounts[created["code"]] = created
        return _mutation("discountCodeBasicCreate", codeDiscountNode=_discount_node(created))

    def _discount_update(self, shop: FakeShop, variables: dict[str, Any]) -> dict[str, Any]:
        node_id, changes = variables["id"], variables["basicCodeDiscount"]
        current = next((d for d in shop.discounts.values() if d["id"] == node_id), None)
        if current is None:
            errors = [{"field": ["id"], "message": "Discount does not exist", "code": "INVALID"}]
        else:
            errors = _code_taken(shop, changes.get("code", current["code"]), except_id=node_id)
        if errors:
            return _mutation("discountCodeBasicUpdate", codeDiscountNode=None, userErrors=errors)
        del shop.discounts[current["code"]]
        updated = {**current, **changes}
        shop.discounts[updated["code"]] = updated
        return _mutation("discountCodeBasicUpdate", codeDiscountNode=_discount_node(updated))

    def approve_purchase(self, shop: str, purchase_id: str) -> None:
        """The merchant clicks "Approve" on the confirmation page."""
        next(p for p in self.shops[shop].purchases if p["id"] == purchase_id)["status"] = "ACTIVE"

    def _node_query(self, shop: FakeShop, variables: dict[str, Any]) -> dict[str, Any]:
        found = next((p for p in shop.purchases if p["id"] == variables.get("id")), None)
        if found is None:
            return {"node": None}
        return {"node": {key: found[key] for key in ("id", "name", "status", "test")}}

    def _purchase_create(self, shop: FakeShop, variables: dict[str, Any]) -> dict[str, Any]:
        number = next(self._gids)
        purchase = {
            "id": f"gid://shopify/AppPurchaseOneTime/{number}",
            "name": variables["name"],
            "price": variables["price"],
            "returnUrl": variables["returnUrl"],
            "test": variables.get("test", False),
            "status": "PENDING",
        }
        shop.purchases.append(purchase)
        return _mutation(
            "appPurchaseOneTimeCreate",
            appPurchaseOneTime={key: purchase[key] for key in ("id", "name", "status", "test")},
            confirmationUrl=f"https://{shop.domain}/admin/charges/{number}/confirm_purchase",
        )


# -- module helpers ------------------------------------------------------------------------


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)


def _oauth_error(error: str, description: str, *, status: int = 400) -> Response:
    return _json(status, {"error": error, "error_description": description})


def _mutation(name: str, **payload: Any) -> dict[str, Any]:
    return {name: {**payload, "userErrors": payload.get("userErrors", [])}}


def _take(queue: list[Queued], path: str) -> Queued | None:
    item = next((q for q in queue if q.path_contains in path), None)
    if item is not None:
        item.remaining -= 1
        if item.remaining <= 0:
            queue.remove(item)
    return item


def _parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """Token requests arrive as JSON or form-encoded (§1.7); values are compared as text."""
    if "json" not in content_type:
        return dict(parse_qsl(body.decode()))
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("token request body must be a JSON object")
    return {key: str(value) for key, value in data.items()}


def _new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verified_jwt_claims(token: str, secret: str) -> dict[str, Any] | None:
    """Claims of an HS256 JWT signed with `secret` (§2 steps 1-3), else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (json.loads(_b64url_decode(part)) for part in parts[:2])
        signature = _b64url_decode(parts[2])
    except ValueError:  # bad base64, UTF-8 or JSON
        return None
    signed = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    if not (isinstance(header, dict) and isinstance(claims, dict)):
        return None
    if header.get("alg") != "HS256" or not hmac.compare_digest(signature, expected):
        return None
    return claims


def _operation(query: str) -> str | None:
    return next((name for name in (*MUTATIONS, *QUERIES) if re.search(rf"\b{name}\b", query)), None)


def _missing_discount_fields(discount: dict[str, Any]) -> list[dict[str, Any]]:
    missing = [name for name in DISCOUNT_REQUIRED_ON_CREATE if not discount.get(name)]
    if "context" not in discount and "customerSelection" not in discount:
        missing.append("context")
    return [
        {"field": ["basicCodeDiscount", name], "message": f"{name} can't be blank", "code": "BLANK"}
        for name in missing
    ]


def _code_taken(shop: FakeShop, code: str, *, except_id: str | None = None) -> list[dict[str, Any]]:
    # Discount codes are unique per shop regardless of case.
    taken = any(
        existing.casefold() == code.casefold() and discount["id"] != except_id
        for existing, discount in shop.discounts.items()
    )
    if not taken:
        return []
    message = "Code must be unique. Please try a different code."
    return [{"field": ["basicCodeDiscount", "code"], "message": message, "code": "TAKEN"}]


def _discount_node(discount: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": discount["id"],
        "codeDiscount": {
            "title": discount.get("title"),
            "codes": {"nodes": [{"code": discount["code"]}]},
            "startsAt": discount.get("startsAt"),
            "endsAt": discount.get("endsAt"),
            "usageLimit": discount.get("usageLimit"),
        },
    }


def _iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


# -- webhook sender (§3.1-3.2) -------------------------------------------------------------


def webhook_signature(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` value: base64 HMAC-SHA256 of the exact raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def send_webhook(
    client: httpx.AsyncClient,
    url: str,
    *,
    topic: str,
    shop: str,
    payload: Mapping[str, Any] | bytes,
    secret: str,
    webhook_id: str | None = None,
    event_id: str | None = None,
    api_version: str = "2026-07",
    triggered_at: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """POST one delivery like Shopify; `signature` overrides the HMAC to forge bad ones."""
    # Serialised once: the HMAC must cover exactly the bytes on the wire.
    body = (
        payload
        if isinstance(payload, bytes)
        else json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False).encode()
    )
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": webhook_signature(body, secret)
        if signature is None
        else signature,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_at or _iso(time.time()),
    }
    return await client.post(url, content=body, headers=headers)


async def deliver_many(
    client: httpx.AsyncClient,
    url: str,
    deliveries: Sequence[Mapping[str, Any]],
    *,
    duplicate_ratio: float = 0.0,
    shuffle: bool = False,
    seed: int = 0,
    concurrency: int = 10,
) -> list[httpx.Response]:
    """Send `send_webhook` keyword sets; repeats and reordering mimic Shopify's retries.

    A repeat keeps its webhook id, event id and triggered-at, as a Shopify retry does (§3.3).
    Responses come back in the (possibly shuffled) order the deliveries were planned.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test traffic, not security
    planned = [_pinned(delivery, rng) for delivery in deliveries]
    planned += rng.sample(planned, round(len(planned) * duplicate_ratio))
    if shuffle:
        rng.shuffle(planned)
    limit = asyncio.Semaphore(concurrency)

    async def send(delivery: dict[str, Any]) -> httpx.Response:
        async with limit:
            return await send_webhook(client, url, **delivery)

    return list(await asyncio.gather(*(send(delivery) for delivery in planned)))


def _pinned(delivery: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    """Fix the identifiers up front so that every repeat of a delivery shares them."""
    return {
        **delivery,
        "webhook_id": delivery.get("webhook_id")
        or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_id": delivery.get("event_id") or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "triggered_at": delivery.get("triggered_at") or _iso(time.time()),
    }
