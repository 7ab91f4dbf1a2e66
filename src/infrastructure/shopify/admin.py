"""`ShopifyAdmin` over httpx: Admin GraphQL with cost-based self-throttling and retries.

Shopify meters GraphQL per app and shop with a leaky bucket (contract §6.4). We keep a
model of each shop's bucket from the last `throttleStatus` and wait before a request
would overdraw it, so a burst of writes slows down instead of being refused. Until the
first response seeds the model, one request goes alone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from application.errors import ShopifyRejected, ShopifyUnauthorized, ShopifyUnavailable
from application.ports import ShopInfo, ShopRef
from domain.events import subscription_enum
from infrastructure.shopify.oauth import json_object
from infrastructure.telemetry.metrics import SHOPIFY_CALLS, SHOPIFY_GRAPHQL_RETRIED
from infrastructure.telemetry.tracing import open_span

log = logging.getLogger("blossom.shopify")

QUERY_COST = 1
MUTATION_COST = 10
# A longer Retry-After is not waited out in a worker slot: the call fails as unavailable
# and the job's own backoff takes over.
LONGEST_WAIT_SECONDS = 60.0

SHOP_QUERY = """
query shop { shop { name currencyCode ianaTimezone billingAddress { countryCodeV2 } } }
"""
SUBSCRIBE = """
mutation webhookSubscriptionCreate($topic: WebhookSubscriptionTopic!,
                                   $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
"""


PURCHASE = """
mutation appPurchaseOneTimeCreate($name: String!, $price: MoneyInput!, $returnUrl: URL!,
                                  $test: Boolean) {
  appPurchaseOneTimeCreate(name: $name, price: $price, returnUrl: $returnUrl, test: $test) {
    appPurchaseOneTime { id status }
    confirmationUrl
    userErrors { field message }
  }
}
"""
PURCHASE_STATUS = """
query node($id: ID!) { node(id: $id) { ... on AppPurchaseOneTime { id status } } }
"""


@dataclass
class _Bucket:
    maximum: float
    available: float
    restore_rate: float
    at: float

    def projected(self, now: float) -> float:
        return min(self.maximum, self.available + (now - self.at) * self.restore_rate)


@dataclass
class _ShopThrottle:
    bucket: _Bucket | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set (and replaced) when the model is seeded or the probe ends: a probe refused or
    # unanswered seeds nothing, and its waiters must then take over, not wait for ever.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    probing: bool = False
    # Cost reserved by requests that have no answer yet: Shopify's reported level does
    # not include them, so the model subtracts them or it would overdraw.
    outstanding: float = 0.0


class HttpShopifyAdmin:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_version: str,
        origin: Callable[[str], str],
        access_token: Callable[[ShopRef], Awaitable[str]],
        token_refused: Callable[[ShopRef, str], Awaitable[None]] | None = None,
        max_attempts: int = 6,
        backoff_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._version = api_version
        self._origin = origin
        self._access_token = access_token
        self._token_refused = token_refused
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._clock = clock
        self._throttles: dict[str, _ShopThrottle] = {}
        # What Shopify charged for each query text: better than our hint next time.
        self._learned_costs: dict[str, int] = {}

    async def shop_info(self, shop: ShopRef) -> ShopInfo:
        data = await self.execute(shop, SHOP_QUERY, cost=QUERY_COST)
        info = data["shop"]
        return ShopInfo(
            name=info["name"],
            currency=info["currencyCode"],
            timezone=info["ianaTimezone"],
            country=(info.get("billingAddress") or {}).get("countryCodeV2") or "US",
        )

    async def subscribe_webhook(self, shop: ShopRef, topic: str, uri: str) -> bool:
        variables = {"topic": subscription_enum(topic), "webhookSubscription": {"uri": uri}}
        data = await self.execute(shop, SUBSCRIBE, variables, cost=MUTATION_COST)
        errors = data["webhookSubscriptionCreate"]["userErrors"]
        if any("already been taken" in str(e.get("message", "")) for e in errors):
            return False  # re-install: the subscription is already there
        _raise_user_errors("webhookSubscriptionCreate", errors)
        return True

    async def create_one_time_purchase(
        self, shop: ShopRef, *, name: str, amount: str, currency: str, return_url: str, test: bool
    ) -> tuple[str, str]:
        variables = {
            "name": name,
            "price": {"amount": amount, "currencyCode": currency},
            "returnUrl": return_url,
            "test": test,
        }
        payload = await self.mutate(shop, "appPurchaseOneTimeCreate", PURCHASE, variables)
        return payload["appPurchaseOneTime"]["id"], payload["confirmationUrl"]

    async def purchase_status(self, shop: ShopRef, purchase_id: str) -> str | None:
        data = await self.execute(shop, PURCHASE_STATUS, {"id": purchase_id}, cost=QUERY_COST)
        return (data.get("node") or {}).get("status")

    async def mutate(
        self, shop: ShopRef, root: str, query: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run a mutation and return its payload; `userErrors` raise `ShopifyRejected`
        (HTTP 200 with user errors means nothing was written)."""
        payload = (await self.execute(shop, query, variables, cost=MUTATION_COST))[root]
        _raise_user_errors(root, payload.get("userErrors") or [])
        return payload

    async def execute(
        self,
        shop: ShopRef,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        cost: int = MUTATION_COST,
    ) -> dict[str, Any]:
        """Run one GraphQL operation and return its `data`; raises typed errors."""
        attributes = {"shopify.shop": shop.domain, "graphql.operation": _operation(query)}
        with open_span("shopify.graphql", attributes=attributes) as span:
            for attempt in range(self._max_attempts):
                span.set_attribute("shopify.attempts", attempt + 1)
                reserved = await self._reserve(shop.domain, query, cost)
                try:
                    outcome = await self._attempt(shop, query, variables or {}, attempt, reserved)
                finally:
                    self._settle(shop.domain, reserved)
                if outcome is not None:
                    return outcome
        raise ShopifyUnavailable(f"Shopify GraphQL still failing after {self._max_attempts} tries")

    async def _attempt(
        self, shop: ShopRef, query: str, variables: Mapping[str, Any], attempt: int, cost: int
    ) -> dict[str, Any] | None:
        url = f"{self._origin(shop.domain)}/admin/api/{self._version}/graphql.json"
        token = await self._access_token(shop)
        headers = {"X-Shopify-Access-Token": token}
        started = time.perf_counter()
        try:
            response = await self._http.post(
                url, json={"query": query, "variables": dict(variables)}, headers=headers
            )
        except httpx.TransportError as exc:
            SHOPIFY_CALLS.labels("transport_error").inc()
            log.warning("shopify unreachable", extra={"error_type": type(exc).__name__})
            await self._pause(attempt, self._delay(attempt))
            return None
        SHOPIFY_CALLS.labels(str(response.status_code)).inc()
        if response.status_code == 401 and self._token_refused is not None:
            await self._token_refused(shop, token)
        log.debug(
            "shopify call",
            extra={
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000),
            },
        )
        return await self._handle(shop.domain, query, response, attempt, cost)

    async def _handle(
        self, domain: str, query: str, response: httpx.Response, attempt: int, cost: int
    ) -> dict[str, Any] | None:
        if response.status_code in (401, 403):
            raise ShopifyUnauthorized(f"Shopify refused the token for {domain}")
        if response.status_code == 429 or response.status_code >= 500:
            await self._pause(attempt, _retry_after(response) or self._delay(attempt))
            return None
        body = json_object(response)
        metered = (body.get("extensions") or {}).get("cost") or {}
        self._observe(domain, metered.get("throttleStatus"), cost)
        if metered.get("requestedQueryCost"):
            self._learned_costs[query] = int(metered["requestedQueryCost"])
        errors = _error_list(body.get("errors"))
        if any(_code(e) == "THROTTLED" for e in errors):
            SHOPIFY_GRAPHQL_RETRIED.labels("THROTTLED").inc()
            await self._pause(attempt, _throttle_wait(metered) + random.random() * 0.1)  # noqa: S311
            return None
        if any(_code(e) == "INTERNAL_SERVER_ERROR" for e in errors):
            # Shopify's 500 in GraphQL form, usually with HTTP 200: as passing as a 5xx, so
            # it is retried like one, and when it outlasts us it is unavailable, not refused.
            SHOPIFY_GRAPHQL_RETRIED.labels("INTERNAL_SERVER_ERROR").inc()
            await self._pause(attempt, self._delay(attempt))
            return None
        if response.status_code != 200:
            # 402 (shop frozen), 404, 423 (shop locked) …: retrying will not change them.
            raise ShopifyRejected(f"HTTP {response.status_code}: {_messages(errors)}", errors)
        if errors or not isinstance(body.get("data"), dict):
            raise ShopifyRejected(f"GraphQL error: {_messages(errors)}", errors)
        return body["data"]

    async def _pause(self, attempt: int, seconds: float) -> None:
        """Wait before the next attempt; after the last one there is nothing to wait for."""
        if seconds > LONGEST_WAIT_SECONDS:
            raise ShopifyUnavailable(f"Shopify asked us to wait {seconds:.0f} s")
        if attempt + 1 < self._max_attempts:
            await asyncio.sleep(seconds)

    async def _reserve(self, domain: str, query: str, hint: int) -> int:
        """Wait until the bucket model can pay for the query; returns the cost reserved."""
        throttle = self._throttles.setdefault(domain, _ShopThrottle())
        while throttle.bucket is None:
            if not throttle.probing:
                throttle.probing = True  # this request goes alone and seeds the model
                throttle.outstanding += hint
                return hint
            await throttle.changed.wait()
        cost = self._learned_costs.get(query, hint)
        throttle.outstanding += cost
        async with throttle.lock:
            bucket = throttle.bucket
            now = self._clock()
            available = bucket.projected(now)
            wait = max(0.0, (cost - available) / bucket.restore_rate)
            bucket.available, bucket.at = available - cost, now
        if wait:
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                # Given up before it was sent: its cost goes back, or the model would count
                # it against every later answer and slow the shop down for good.
                throttle.outstanding = max(0.0, throttle.outstanding - cost)
                throttle.bucket.available += cost
                raise
        return cost

    def _observe(self, domain: str, status: Mapping[str, Any] | None, cost: int) -> None:
        throttle = self._throttles[domain]
        if status:
            others = throttle.outstanding - cost  # this answer's own cost is already metered
            throttle.bucket = _Bucket(
                maximum=float(status["maximumAvailable"]),
                available=float(status["currentlyAvailable"]) - others,
                restore_rate=float(status["restoreRate"]) or 1.0,
                at=self._clock(),
            )
            _wake(throttle)

    def _settle(self, domain: str, cost: int) -> None:
        """The attempt's reservation ends, answered or abandoned."""
        throttle = self._throttles[domain]
        throttle.outstanding = max(0.0, throttle.outstanding - cost)
        if throttle.probing:
            throttle.probing = False
            _wake(throttle)  # unseeded, the next waiter probes

    def _delay(self, attempt: int) -> float:
        return min(30.0, self._backoff * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311


def _wake(throttle: _ShopThrottle) -> None:
    """Release everyone waiting on the shop's bucket model to look at it again."""
    woken, throttle.changed = throttle.changed, asyncio.Event()
    woken.set()


_OPERATION = re.compile(r"\s*(?:query|mutation)\s+(\w+)")


def _operation(query: str) -> str:
    """The operation's name, for spans: `mutation webhookSubscriptionCreate(…)`."""
    named = _OPERATION.match(query)
    return named[1] if named else "anonymous"


def _raise_user_errors(operation: str, errors: list[dict[str, Any]]) -> None:
    if errors:
        raise ShopifyRejected(f"{operation}: {_messages(errors)}", errors)


def _code(error: Any) -> str | None:
    return (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None


def _error_list(errors: Any) -> list[Any]:
    """GraphQL `errors` is a list; REST-style answers carry a string or an object."""
    if not errors:
        return []
    return errors if isinstance(errors, list) else [errors]


def _messages(errors: Any) -> str:
    if not errors:
        return "no details"
    return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)


def _throttle_wait(cost: Mapping[str, Any]) -> float:
    status = cost.get("throttleStatus") or {}
    requested = float(cost.get("requestedQueryCost") or MUTATION_COST)
    rate = float(status.get("restoreRate") or 50.0)
    return max(0.0, requested - float(status.get("currentlyAvailable") or 0.0)) / rate


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds, as the header says (never milliseconds: contract §8)."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None
