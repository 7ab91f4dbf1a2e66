"""`SmsGateway` over Mitto's SMS REST API (contract sms.md §1), sending each message once.

Retries never risk a second copy: a request that cannot have reached Mitto is resent, but
one that may have been accepted (the answer was lost) is looked up by our reference first.

Mitto's public documentation describes no lookup by reference (contract: unconfirmed). We
assume `GET /sms?reference=<ref>` answering 200 with the message's `id`, or 404 when no
message has that reference; the path is `LOOKUP_PATH` alone, so it can be corrected in one
place. Before relying on it, confirm that Mitto answers 404 only for an unknown reference:
a 404 for an unknown *route* would read as "never accepted" and allow a resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from opentelemetry import trace

from application.errors import (
    INVALID_NUMBER,
    SmsFateUnknown,
    SmsRejected,
    SmsUnauthorized,
    SmsUnavailable,
)
from application.ports import OutboundSms, SmsReceipt
from infrastructure.mitto.reports import PROVIDER_ID_LENGTH
from infrastructure.telemetry.metrics import SMS_PROVIDER_ERRORS, SMS_PROVIDER_LATENCY
from infrastructure.telemetry.tracing import open_span

log = logging.getLogger("blossom.mitto")
tracer = trace.get_tracer("blossom.mitto")

SEND_PATH = "/sms"
# Unconfirmed by Mitto's documentation: see the module docstring.
LOOKUP_PATH = "/sms"
API_KEY_HEADER = "X-Mitto-API-Key"
# A longer Retry-After is not slept through in a worker: the job queue waits instead.
MAX_RETRY_AFTER_SECONDS = 60.0
ACCEPTED = 0
INTERNAL_ERROR = 1
REJECTION_CODES = {
    2: "invalid_request",  # invalid type
    3: "invalid_text",  # empty message
    4: "invalid_text",  # text invalid for the encoding
    5: "invalid_sender",  # empty sender
    6: "invalid_sender",  # invalid sender
    7: "invalid_request",  # empty receiver
    8: INVALID_NUMBER,  # invalid receiver
    9: "invalid_text",  # character-set error
}
# The request never left this machine or never reached Mitto: resending cannot duplicate.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Proxy answers that say nothing of what Mitto itself did with the request.
AMBIGUOUS_STATUSES = frozenset({502, 504})
# Lookups are reads: repeating them is always safe.
LOOKUP_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_DETAIL_CHARS = 200

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Retry:
    """An attempt that may be repeated; `retry_after` is Mitto's advice, when it gave one."""

    detail: str
    retry_after: float | None = None


class _Connections:
    """Up to `size` keep-alive connections to Mitto: one httpx client per connection, each
    lent to one request at a time (a `client` passed in is shared, with its own limits).

    httpcore's pool walks every connection (a poll(2) on each idle one) and every waiting
    request whenever a request starts or ends, so in one pooled client a send's CPU grows
    with the pool and the queue: 1.9 ms a send with 20 connections, against 0.8 ms with 20
    single-connection clients (bench/dispatch.py, 2 cores). Here a request waits for a free
    client in a queue, which costs nothing per connection; one that gets none within the
    pool timeout fails with httpx's PoolTimeout, as it would have in the shared pool.
    """

    def __init__(self, client: httpx.AsyncClient | None, size: int, timeout: httpx.Timeout) -> None:
        self._shared = client
        self._wait = timeout.pool
        self._clients: list[httpx.AsyncClient] = []
        self._idle: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()  # warm first
        if client is not None:
            return
        tls = httpx.create_ssl_context()  # loaded once, not once per client
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        for _ in range(max(1, size)):
            self._clients.append(httpx.AsyncClient(timeout=timeout, limits=one, verify=tls))
            self._idle.put_nowait(self._clients[-1])

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._shared is not None:
            yield self._shared
            return
        if self._idle.empty():
            try:
                async with asyncio.timeout(self._wait):
                    client = await self._idle.get()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection to Mitto") from None
        else:
            client = self._idle.get_nowait()
        try:
            yield client
        finally:
            self._idle.put_nowait(client)

    async def aclose(self) -> None:
        for client in self._clients:  # a client passed in is its owner's to close
            await client.aclose()


class MittoSmsGateway:
    """Sends through a small pool of keep-alive connections; `timeout` applies to each
    request, also on a `client` passed in. `sleep` is how retries wait (tests pass a
    recorder)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = 10.0,
        max_attempts: int = 4,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        client: httpx.AsyncClient | None = None,
        callback_url: str | None = None,
        sleep: Sleep = asyncio.sleep,
        max_connections: int = 20,
    ) -> None:
        self._headers = {API_KEY_HEADER: api_key}
        self._send_url = base_url.rstrip("/") + SEND_PATH
        self._lookup_url = base_url.rstrip("/") + LOOKUP_PATH
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._max_attempts = max(1, max_attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._callback_url = callback_url
        self._sleep = sleep
        self._connections = _Connections(client, max_connections, self._timeout)

    async def aclose(self) -> None:
        await self._connections.aclose()

    # -- send --------------------------------------------------------------------------------

    async def send(self, sms: OutboundSms) -> SmsReceipt:
        with open_span("mitto.send", tracer=tracer) as span:
            span.set_attribute("sms.reference", sms.reference)
            started = time.perf_counter()
            outcome = "unavailable"
            try:
                receipt = await self._send(sms)
                outcome = "accepted"
                return receipt
            except SmsRejected:
                outcome = "rejected"
                raise
            except SmsUnauthorized:
                outcome = "unauthorized"
                raise
            finally:
                span.set_attribute("sms.outcome", outcome)
                SMS_PROVIDER_LATENCY.labels("send", outcome).observe(time.perf_counter() - started)

    async def _send(self, sms: OutboundSms) -> SmsReceipt:
        payload = self._payload(sms)
        retry = _Retry("no attempt made")
        attempts = 0
        while attempts < self._max_attempts:
            attempts += 1
            outcome = await self._attempt(sms.reference, payload)
            if isinstance(outcome, SmsReceipt):
                return outcome
            retry = outcome
            if retry.retry_after is not None and retry.retry_after > MAX_RETRY_AFTER_SECONDS:
                break
            if attempts < self._max_attempts:
                wait = retry.retry_after
                await self._sleep(self._backoff(attempts - 1) if wait is None else wait)
        log.warning(
            "mitto send gave up",
            extra={"reference": sms.reference, "attempts": attempts, "reason": retry.detail},
        )
        raise SmsUnavailable(
            f"Mitto: {retry.detail} after {attempts} attempt(s)",
            retry_after_seconds=retry.retry_after,
        )

    def _payload(self, sms: OutboundSms) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "from": _mitto_sender(sms.sender),
            "to": sms.to.removeprefix("+"),
            "text": sms.text,
            "type": "Unicode" if sms.unicode else "GSM",
            "reference": sms.reference,
        }
        if self._callback_url:
            payload["callback"] = self._callback_url
        return payload

    async def _attempt(self, reference: str, payload: dict[str, Any]) -> SmsReceipt | _Retry:
        try:
            async with self._connections.lend() as http:
                response = await http.post(
                    self._send_url, json=payload, headers=self._headers, timeout=self._timeout
                )
        except NEVER_SENT as exc:
            _count_transport_error(exc)
            log.warning(
                "mitto unreachable",
                extra={"reference": reference, "error_type": type(exc).__name__},
            )
            return _Retry(f"unreachable ({type(exc).__name__})")
        except httpx.TransportError as exc:
            _count_transport_error(exc)
            return await self._recover(reference, f"no answer ({type(exc).__name__})")
        return await self._handle(reference, response)

    async def _handle(self, reference: str, response: httpx.Response) -> SmsReceipt | _Retry:
        status = response.status_code
        if status in (401, 403):
            SMS_PROVIDER_ERRORS.labels("auth").inc()
            log.error("mitto refused the API key", extra={"reference": reference, "status": status})
            raise SmsUnauthorized(f"Mitto refused the API key (HTTP {status})")
        if status == 429:
            SMS_PROVIDER_ERRORS.labels("rate_limited").inc()
            log.warning("mitto rate limited", extra={"reference": reference})
            return _Retry("rate limited (HTTP 429)", _retry_after(response))
        if status in AMBIGUOUS_STATUSES:
            SMS_PROVIDER_ERRORS.labels("server_error").inc()
            return await self._recover(reference, f"HTTP {status}")
        if status >= 500 or status == 408:
            SMS_PROVIDER_ERRORS.labels("server_error").inc()
            log.warning("mitto server error", extra={"reference": reference, "status": status})
            return _Retry(f"HTTP {status}", _retry_after(response))
        return await self._interpret(reference, response)

    async def _interpret(self, reference: str, response: httpx.Response) -> SmsReceipt | _Retry:
        """Mitto answers refusals as HTTP 200 with a non-zero `responseCode` (contract §1)."""
        body = _json_object(response)
        code = _response_code(body)
        success = response.is_success
        provider_id = _message_id(body)
        if success and provider_id is not None and code in (ACCEPTED, None):
            return SmsReceipt(provider_id)
        if code == INTERNAL_ERROR:
            SMS_PROVIDER_ERRORS.labels("server_error").inc()
            log.warning("mitto internal error", extra={"reference": reference})
            return _Retry("internal error (responseCode 1)")
        if code is not None and code != ACCEPTED:
            raise self._rejected(reference, code, body)
        if success:
            # Mitto said yes but we cannot read its answer: whether it accepted is unclear.
            return await self._recover(
                reference, f"unreadable answer (HTTP {response.status_code})"
            )
        SMS_PROVIDER_ERRORS.labels("rejected").inc()
        raise SmsRejected("invalid_request", f"HTTP {response.status_code}")

    def _rejected(self, reference: str, code: int, body: dict[str, Any] | None) -> SmsRejected:
        SMS_PROVIDER_ERRORS.labels("rejected").inc()
        log.warning("mitto rejected the message", extra={"reference": reference, "code": code})
        text = str((body or {}).get("responseText") or "")[:MAX_DETAIL_CHARS]
        return SmsRejected(REJECTION_CODES.get(code, "rejected"), f"responseCode {code} {text}")

    async def _recover(self, reference: str, detail: str) -> SmsReceipt | _Retry:
        """The request was written, so Mitto may have accepted it without us hearing. A blind
        resend could deliver the text twice, so ask first; when Mitto cannot tell, give up
        as `SmsFateUnknown` (the message waits for a delivery report) rather than risk a
        duplicate.
        One window stays open: a request Mitto is still working on when our timeout fires
        looks "never accepted"; a timeout far above Mitto's usual latency keeps it small."""
        log.warning(
            "mitto answer lost, looking the message up before any resend",
            extra={"reference": reference, "reason": detail},
        )
        try:
            receipt = await self.lookup(reference)
        except SmsUnavailable as exc:
            raise SmsFateUnknown(
                f"Mitto may have accepted the message ({detail}) and the lookup cannot tell: {exc}"
            ) from exc
        if receipt is not None:
            log.info("mitto had accepted the message", extra={"reference": reference})
            return receipt
        return _Retry(detail)

    def _backoff(self, attempt: int) -> float:
        """Exponential with full jitter, so a crowd of retries spreads out."""
        ceiling = min(self._max_delay, self._base_delay * 2**attempt)
        return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not security

    # -- lookup ------------------------------------------------------------------------------

    async def lookup(self, reference: str) -> SmsReceipt | None:
        with open_span("mitto.lookup", tracer=tracer) as span:
            span.set_attribute("sms.reference", reference)
            started = time.perf_counter()
            outcome = "unavailable"
            try:
                receipt = await self._lookup(reference)
                outcome = "not_found" if receipt is None else "found"
                return receipt
            finally:
                span.set_attribute("sms.outcome", outcome)
                SMS_PROVIDER_LATENCY.labels("lookup", outcome).observe(
                    time.perf_counter() - started
                )

    async def _lookup(self, reference: str) -> SmsReceipt | None:
        detail = "no attempt made"
        for attempt in range(self._max_attempts):
            if attempt:
                await self._sleep(self._backoff(attempt - 1))
            try:
                async with self._connections.lend() as http:
                    response = await http.get(
                        self._lookup_url,
                        params={"reference": reference},
                        headers=self._headers,
                        timeout=self._timeout,
                    )
            except httpx.TransportError as exc:
                _count_transport_error(exc)
                detail = f"lookup unreachable ({type(exc).__name__})"
                continue
            status = response.status_code
            if status == 404:
                return None
            if status == 200:
                return _found(reference, response)
            if status not in LOOKUP_RETRY_STATUSES:
                # 405/501 and the like: Mitto offers no such lookup (or refuses our key).
                if status in (401, 403):
                    SMS_PROVIDER_ERRORS.labels("auth").inc()
                raise SmsUnavailable(f"Mitto lookup not possible (HTTP {status})")
            SMS_PROVIDER_ERRORS.labels("rate_limited" if status == 429 else "server_error").inc()
            detail = f"lookup HTTP {status}"
        raise SmsUnavailable(f"Mitto: {detail} after {self._max_attempts} attempt(s)")


def _mitto_sender(sender: str) -> str:
    """A numeric sender goes as digits, like the receiver; an alphanumeric one as it is."""
    digits = sender.removeprefix("+")
    return digits if digits.isdigit() else sender


def _found(reference: str, response: httpx.Response) -> SmsReceipt:
    body = _json_object(response)
    provider_id = _message_id(body)
    if body is None or provider_id is None:
        raise SmsUnavailable("Mitto lookup answered without a message id")
    echoed = body.get("reference")
    if echoed is not None and str(echoed) != reference:
        # The endpoint ignored our filter: its answer says nothing about our message.
        raise SmsUnavailable("Mitto lookup answered for another reference")
    return SmsReceipt(provider_id)


def _message_id(body: dict[str, Any] | None) -> str | None:
    """Mitto's id for the message when the message row can keep it and reports can match it;
    anything else counts as no answer, since the send may have gone through."""
    value = (body or {}).get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= PROVIDER_ID_LENGTH and "\x00" not in text else None


def _count_transport_error(exc: httpx.TransportError) -> None:
    # The label set is fixed: a refused or dropped connection counts with server errors.
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "server_error"
    SMS_PROVIDER_ERRORS.labels(kind).inc()


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _response_code(body: dict[str, Any] | None) -> int | None:
    if body is None or body.get("responseCode") is None:
        return None
    try:
        return int(body["responseCode"])
    except (TypeError, ValueError):
        return None


def _retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds to wait: the header holds seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
