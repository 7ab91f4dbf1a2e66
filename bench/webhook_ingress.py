"""Webhook ingress: how fast `POST /webhooks/shopify` verifies, stores, enqueues and answers.

Run from the repository root (about 90 s on 2 cores):

    .venv/bin/python bench/webhook_ingress.py [--duration S] [--max-concurrency C1,C2]
        [--concurrency C] [--deliveries M]

It uses `DATABASE_URL`'s server when set, else the embedded Postgres in `.data/bench`
(both through `queue_throughput.py`'s helpers), creates a throw-away database, migrates it,
adds two shops through the composition root, and drops the database at the end.

The real API runs as `blossom api` in a subprocess (uvicorn, no access log, LOG_LEVEL=WARNING)
with a known `SHOPIFY_API_SECRET`. No worker runs: what is measured is ingress alone, i.e.
HMAC check on the raw body, the payload encrypted, the group commit (deliveries arriving
together share one `blossom_admit_webhooks` statement: shop lookup, inbox insert under the
shop's scope, one job each) and the 200 answer after that commit.

Baseline: a no-op Litestar app (`POST /noop` reads the body, answers `{"status":"accepted"}`)
served as `blossom api` serves ours (same `uvicorn.Config`, httptools, no access log,
uvloop), in its own subprocess (`--serve-noop PORT`). The ratio says how much
of the HTTP stack's capacity our ingress keeps; the issue's target is read against it.
Beside it, the same no-op route with the app's observability middleware (request span on
the SDK tracer, request id, Prometheus: `interfaces.http.app.observability`), so the ratio
can be split into what every observed request costs and what ingress adds.

Load: signed `orders/create` deliveries of a realistic ~7.6 KB order (line items, addresses,
a customer with email and phone; all fake). The body is the same for every delivery, so one
signature serves all; each delivery gets its own `X-Shopify-Webhook-Id` (and event id). The
generator is asyncio on uvloop with a pool of C keep-alive HTTP/1.1 connections:

- `--client raw` (default): a minimal HTTP/1.1 client on asyncio streams, ~0.07 ms of CPU
  per request here;
- `--client httpx`: `httpx.AsyncClient` with a pool of C connections. On this 2-core machine
  it costs 1-6 ms of CPU per request (its pool gets slower as C grows), so it saturates
  before the no-op server does (~150 req/s against the no-op at C=32, where the raw client
  drives ~4,400) and the baseline would measure the client.

`wrk` (Debian package `wrk`, with a Lua script to add the headers and vary the webhook id)
would be a leaner generator still; it is not installed here.

Measures:

1. max throughput   closed loop, C workers as fast as they can, 2 s warm-up then D seconds,
                    against the app and the no-op baselines, once for each C of
                    `--max-concurrency` (32 and 64): requests/s, p50/p99 latency. Each
                    target's maximum is its best run: the app batches commits, so it
                    reaches its plateau at a higher concurrency than the no-op route;
2. half rate        open loop at 50% of the app's measured maximum, 2 s warm-up then D
                    seconds: sends are scheduled at fixed intervals whatever the responses,
                    and latency runs from the scheduled time (no coordinated omission);
                    p50/p99;
3. duplicates       M deliveries of which 10% repeat an earlier webhook id with identical
                    headers (half of them right behind their original, so both are in flight
                    together); then `webhook_events` rows and `events:process_webhook` jobs of
                    that shop must both equal the number of distinct ids.

Caveats: the load generator runs on the same machine (2 cores here) and competes with the
server and Postgres for CPU; each run prints the CPU each side used (percent of one core:
this process, the server process, all local processes named `postgres`). The API is one
process, so it can use one core at most. Expect run-to-run noise of 10-20%, more on a busy
machine (the load average is printed first). The load generator pauses its own cyclic
garbage collector during each run, since its pauses would read as server latency.

Each run also prints the WAL Postgres wrote per request and any checkpoint that started
during it: a checkpoint (every ~0.5 GB of WAL with the default `max_wal_size`, i.e. every
~30 s of ingress at full speed) slows commits while it runs. `--checkpoint-first` issues a
CHECKPOINT before each run so that no run inherits the previous run's WAL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # without an install

import asyncpg
import httpx
import litestar
import psutil
import uvicorn
import uvloop
from queue_throughput import fresh_database, server

from domain.shops import Shop
from infrastructure.db.engine import libpq_url
from infrastructure.settings import load_settings
from infrastructure.shopify.fake_server import webhook_signature
from infrastructure.telemetry.tracing import configure_tracing
from interfaces.bootstrap import Container, build_container
from interfaces.http.app import observability

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
SECRET = "bench-shopify-secret-" + "0" * 32
ENCRYPTION_KEYS = "bench1:" + base64.b64encode(hashlib.sha256(b"bench-cipher").digest()).decode()
BLIND_INDEX_KEY = base64.b64encode(hashlib.sha256(b"bench-blind-index").digest()).decode()
LOAD_SHOP = "bench-shop.myshopify.com"
DUPLICATES_SHOP = "bench-dups.myshopify.com"
TOPIC = "orders/create"
TASK = "events:process_webhook"
WARMUP_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
DUPLICATE_RATIO = 0.10
TRIGGERED_AT = "2026-05-04T10:15:30.123Z"
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0


@dataclass(frozen=True)
class Options:
    duration: float
    concurrency: int
    max_concurrency: tuple[int, ...]
    deliveries: int
    client: str
    checkpoint_first: bool


# --- the delivery ---------------------------------------------------------------------


def _address(first: str, last: str, street: str) -> dict[str, Any]:
    return {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "company": None,
        "address1": street,
        "address2": "Apt 4B",
        "city": "Portland",
        "province": "Oregon",
        "province_code": "OR",
        "country": "United States",
        "country_code": "US",
        "zip": "97205",
        "phone": "+15035550123",
        "latitude": 45.5202,
        "longitude": -122.6742,
    }


def _money(amount: str) -> dict[str, Any]:
    return {
        "shop_money": {"amount": amount, "currency_code": "USD"},
        "presentment_money": {"amount": amount, "currency_code": "USD"},
    }


def _line_item(index: int, title: str, price: str, quantity: int) -> dict[str, Any]:
    item_id = 13_000_000_000 + index
    return {
        "id": item_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{item_id}",
        "product_id": 7_000_000_000 + index,
        "variant_id": 41_000_000_000 + index,
        "title": title,
        "variant_title": "Medium / Blush",
        "name": f"{title} - Medium / Blush",
        "sku": f"BLS-{index:04d}-M",
        "vendor": "Blossom Botanicals",
        "quantity": quantity,
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 450,
        "price": price,
        "price_set": _money(price),
        "total_discount": "0.00",
        "total_discount_set": _money("0.00"),
        "product_exists": True,
        "requires_shipping": True,
        "taxable": True,
        "properties": [{"name": "Gift message", "value": "Happy birthday, love from us!"}],
        "tax_lines": [
            {"title": "OR State Tax", "price": "0.00", "rate": 0.0, "price_set": _money("0.00")}
        ],
        "discount_allocations": [],
        "duties": [],
    }


def _customer() -> dict[str, Any]:
    return {
        "id": 6_900_000_000_001,
        "admin_graphql_api_id": "gid://shopify/Customer/6900000000001",
        "email": "jane.doe@example.com",
        "phone": "+15035550123",
        "first_name": "Jane",
        "last_name": "Doe",
        "state": "enabled",
        "note": None,
        "verified_email": True,
        "tags": "vip, newsletter",
        "currency": "USD",
        "tax_exempt": False,
        "created_at": "2025-11-02T09:12:44-05:00",
        "updated_at": TRIGGERED_AT,
        "email_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2025-11-02T09:12:44-05:00",
        },
        "sms_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2025-11-02T09:12:44-05:00",
            "consent_collected_from": "SHOPIFY",
        },
        "default_address": _address("Jane", "Doe", "1200 SW Park Ave"),
    }


def order_payload() -> dict[str, Any]:
    """A plausible `orders/create` body (fake data), about 7 KB of compact JSON."""
    items = [
        _line_item(1, "Peony Bouquet", "64.00", 1),
        _line_item(2, "Ceramic Bud Vase", "28.50", 2),
        _line_item(3, "Lavender Soy Candle", "22.00", 1),
    ]
    return {
        "id": 5_600_000_000_001,
        "admin_graphql_api_id": "gid://shopify/Order/5600000000001",
        "name": "#1042",
        "order_number": 1042,
        "number": 42,
        "token": "b1946ac92492d2347c6235b4d2611184",
        "cart_token": "c1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6",
        "checkout_token": "d41d8cd98f00b204e9800998ecf8427e",
        "confirmation_number": "X7K2P9QWZ",
        "email": "jane.doe@example.com",
        "contact_email": "jane.doe@example.com",
        "phone": "+15035550123",
        "created_at": TRIGGERED_AT,
        "processed_at": TRIGGERED_AT,
        "updated_at": TRIGGERED_AT,
        "currency": "USD",
        "presentment_currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": None,
        "confirmed": True,
        "test": False,
        "buyer_accepts_marketing": True,
        "source_name": "web",
        "landing_site": "/collections/spring?utm_source=sms&utm_campaign=mothers-day",
        "referring_site": "https://www.example.com/",
        "browser_ip": "203.0.113.42",
        "client_details": {
            "browser_ip": "203.0.113.42",
            "accept_language": "en-US,en;q=0.9",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1",
        },
        "note": "Please leave at the front desk.",
        "note_attributes": [{"name": "delivery_date", "value": "2026-05-09"}],
        "tags": "sms-campaign, mothers-day",
        "discount_codes": [{"code": "BLOOM10", "amount": "13.80", "type": "percentage"}],
        "subtotal_price": "124.20",
        "subtotal_price_set": _money("124.20"),
        "total_discounts": "13.80",
        "total_discounts_set": _money("13.80"),
        "total_line_items_price": "143.00",
        "total_line_items_price_set": _money("143.00"),
        "total_shipping_price_set": _money("9.95"),
        "total_tax": "0.00",
        "total_tax_set": _money("0.00"),
        "total_price": "134.15",
        "total_price_set": _money("134.15"),
        "total_weight": 1800,
        "taxes_included": False,
        "tax_lines": [],
        "payment_gateway_names": ["shopify_payments"],
        "customer_locale": "en-US",
        "billing_address": _address("Jane", "Doe", "1200 SW Park Ave"),
        "shipping_address": _address("Maria", "Doe", "845 NE Alberta St"),
        "customer": _customer(),
        "line_items": items,
        "shipping_lines": [
            {
                "id": 4_400_000_000_001,
                "title": "Local delivery",
                "code": "local-delivery",
                "source": "shopify",
                "price": "9.95",
                "price_set": _money("9.95"),
                "discounted_price": "9.95",
                "tax_lines": [],
            }
        ],
        "fulfillments": [],
        "refunds": [],
    }


@dataclass(frozen=True)
class Delivery:
    """One signed body; headers differ per webhook id only."""

    body: bytes
    signature: str
    shop: str

    def headers(self, webhook_id: str | None = None) -> dict[str, str]:
        webhook_id = webhook_id or str(uuid.uuid4())
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": TOPIC,
            "X-Shopify-Hmac-Sha256": self.signature,
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": "2026-07",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, webhook_id)),
            "X-Shopify-Triggered-At": TRIGGERED_AT,
        }


def signed_delivery(shop: str) -> Delivery:
    body = json.dumps(order_payload(), separators=(",", ":")).encode()
    return Delivery(body=body, signature=webhook_signature(body, SECRET), shop=shop)


# --- measuring ------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


@dataclass
class CpuMeter:
    """CPU seconds per side (named processes, plus every local `postgres` process) since the
    meter started, in percent of one core. Call `shares()` before the processes exit."""

    sides: dict[str, list[int]]
    start: dict[tuple[str, int], float] = field(default_factory=dict)
    wall: float = 0.0

    def __post_init__(self) -> None:
        self.start, self.wall = self.sample(), time.perf_counter()

    def sample(self) -> dict[tuple[str, int], float]:
        seconds: dict[tuple[str, int], float] = {}
        for side, pids in self.sides.items():
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    seconds[(side, pid)] = _cpu(psutil.Process(pid))
        for process in psutil.process_iter(["name"]):
            if process.info.get("name") == "postgres":
                seconds[("postgres", process.pid)] = _cpu(process)
        return seconds

    def shares(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.wall
        used: Counter[str] = Counter()
        for (side, pid), seconds in self.sample().items():
            used[side] += max(0.0, seconds - self.start.get((side, pid), 0.0))
        return {side: 100 * seconds / elapsed for side, seconds in used.items()}


def _cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return times.user + times.system
    return 0.0


@dataclass
class Run:
    label: str
    seconds: float
    completed: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)  # open loop: send time - scheduled
    checkpoints: int = 0  # Postgres checkpoints that started during the run
    wal_bytes: int = 0  # WAL Postgres wrote during the run (the whole server's)

    @property
    def requests(self) -> int:
        """Every request sent, warm-up included (what the WAL figure is divided by)."""
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.completed / self.seconds

    def ms(self, fraction: float) -> float:
        return 1000 * percentile(self.latencies, fraction)

    @property
    def non_200(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")


# --- the load generator ---------------------------------------------------------------


class Sender(Protocol):
    """POSTs to one URL over a pool of keep-alive connections."""

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class RawConnection:
    """HTTP/1.1 keep-alive on asyncio streams: just enough for a POST and a sized answer."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{lines}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        reused = self._streams is not None
        try:
            return await self._exchange(request)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if not reused:
                raise
        # The server closed an idle keep-alive connection before reading: send again.
        return await self._exchange(request)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        try:
            writer.write(request)
            await writer.drain()
            status = int((await reader.readuntil(b"\r\n")).split()[1])
            length, close = 0, False
            while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                length = int(value) if name == b"content-length" else length
                close = close or (name == b"connection" and b"close" in value.lower())
            content = await reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, content

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


class RawPool:
    """`size` lazily opened connections; a request waits for a free one."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: asyncio.LifoQueue[RawConnection] = asyncio.LifoQueue()
        for _ in range(size):
            self._idle.put_nowait(RawConnection(host, port, parts.path or "/"))

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = await self._idle.get()
        try:
            return await connection.post(body, headers)
        finally:
            self._idle.put_nowait(connection)

    async def aclose(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


class HttpxSender:
    """The same through `httpx.AsyncClient` and its connection pool."""

    def __init__(self, url: str, size: int) -> None:
        self._url = url
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._client = httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_SECONDS)

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        response = await self._client.post(self._url, content=body, headers=headers)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


SENDERS: dict[str, Callable[[str, int], Sender]] = {"raw": RawPool, "httpx": HttpxSender}


async def send(sender: Sender, body: bytes, headers: dict[str, str]) -> tuple[str, bytes]:
    """The status code as text, or the transport error's name, and the answer's body."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
            status, content = await sender.post(body, headers)
    except (OSError, asyncio.IncompleteReadError, httpx.HTTPError, TimeoutError) as exc:
        return type(exc).__name__, b""
    return str(status), content


async def closed_loop(
    sender: Sender, delivery: Delivery, opts: Options, label: str, concurrency: int
) -> Run:
    """C workers back to back; completions inside [warm-up end, +duration] count."""
    run = Run(label, opts.duration)
    begin = time.perf_counter() + WARMUP_SECONDS
    end = begin + opts.duration

    async def worker() -> None:
        while (started := time.perf_counter()) < end:
            status, _ = await send(sender, delivery.body, delivery.headers())
            done = time.perf_counter()
            run.statuses[status] += 1
            if begin <= done <= end:
                run.completed += 1
            if started >= begin:
                run.latencies.append(done - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return run


async def open_loop(sender: Sender, delivery: Delivery, rate: float, seconds: float) -> Run:
    """Fixed-rate sends whatever the responses; latency from the scheduled send time.

    The first `WARMUP_SECONDS` of sends open the pool's connections and are not counted.
    Finished sends leave the pending set as they finish: gathering the whole run's tasks at
    the end would stall this loop for tens of milliseconds and bill it to the last sends.
    """
    run = Run(f"app at {rate:.0f} req/s", seconds)
    start = time.perf_counter() + 0.05
    begin = start + WARMUP_SECONDS
    pending: set[asyncio.Task[None]] = set()

    async def timed(scheduled: float) -> None:
        status, _ = await send(sender, delivery.body, delivery.headers())
        run.statuses[status] += 1
        if scheduled >= begin:
            run.latencies.append(time.perf_counter() - scheduled)
            run.completed += 1

    for i in range(max(1, int(rate * (WARMUP_SECONDS + seconds)))):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if scheduled >= begin:
            run.lags.append(max(0.0, time.perf_counter() - scheduled))
        task = asyncio.create_task(timed(scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    run.seconds = time.perf_counter() - begin
    return run


# --- duplicates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    ids: list[str]
    distinct: set[str]
    close_repeats: int


def duplicate_plan(count: int, concurrency: int, seed: int = 7) -> Plan:
    """`count` webhook ids, 10% of them repeats of an earlier one.

    Half the repeats follow within `concurrency` places of their original, so both are
    likely in flight together (the race the unique constraint must win); the others land
    anywhere later, like Shopify's retries after a timeout.
    """
    rng = random.Random(seed)
    repeats = round(count * DUPLICATE_RATIO)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count - repeats)]
    close = repeats // 2
    for n in range(repeats):
        original = rng.randrange(len(ids))
        if n < close:
            ids.insert(min(len(ids), original + rng.randint(1, concurrency)), ids[original])
        else:
            ids.insert(rng.randint(original + 1, len(ids)), ids[original])
    return Plan(ids, set(ids), close)


async def send_plan(
    sender: Sender, delivery: Delivery, plan: Plan, concurrency: int
) -> tuple[Counter[str], Counter[str]]:
    """Statuses and answers (`accepted`, `duplicate`, ...); a repeat reuses its headers."""
    headers = {webhook_id: delivery.headers(webhook_id) for webhook_id in plan.distinct}
    pending = iter(plan.ids)
    statuses: Counter[str] = Counter()
    answers: Counter[str] = Counter()

    async def worker() -> None:
        for webhook_id in pending:
            status, content = await send(sender, delivery.body, headers[webhook_id])
            statuses[status] += 1
            if status == "200":
                answers[json.loads(content).get("status", "?")] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, answers


@dataclass(frozen=True)
class InboxCount:
    rows: int
    distinct_ids: int
    ids_match: bool
    jobs: int
    jobs_with_row: int


async def count_inbox(owner: asyncpg.Connection, shop: Shop, plan: Plan) -> InboxCount:
    ids = await owner.fetch("SELECT webhook_id FROM webhook_events WHERE shop_id = $1", shop.id)
    seen = [r["webhook_id"] for r in ids]
    jobs = await owner.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = $1 AND args->>'shop_id' = $2",
        TASK,
        str(shop.id),
    )
    with_row = await owner.fetchval(
        "SELECT count(DISTINCT e.id) FROM procrastinate_jobs j"
        " JOIN webhook_events e ON e.id::text = j.args->>'event_id'"
        " WHERE j.task_name = $1 AND e.shop_id = $2",
        TASK,
        shop.id,
    )
    return InboxCount(len(seen), len(set(seen)), set(seen) == plan.distinct, jobs, with_row)


# --- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(database_url: str, port: int, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BLOSSOM_ENV": "development",
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "SHOPIFY_API_SECRET": SECRET,
        "SHOPIFY_API_SECRET_PREVIOUS": "",
        "BLOSSOM_DATA_DIR": str(data_dir),
        "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
        "BLIND_INDEX_KEY": BLIND_INDEX_KEY,
        "OTEL_TRACES_EXPORTER": "none",
    }


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def serving(
    name: str,
    command: list[str],
    env: dict[str, str],
    log: Path,
    probe: Callable[[], Awaitable[int]],
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A server subprocess, ready when `probe` answers 200; stopped on the way out."""
    process = spawn(command, env, log)
    try:
        await wait_ready(name, process, log, probe)
        yield process
    finally:
        stop(process)


async def wait_ready(
    name: str, process: subprocess.Popen[bytes], log: Path, probe: Callable[[], Awaitable[int]]
) -> None:
    deadline = time.perf_counter() + READY_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode}):\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if await probe() == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_SECONDS:.0f}s")


async def get_status(client: httpx.AsyncClient, url: str) -> int:
    return (await client.get(url)).status_code


async def post_status(client: httpx.AsyncClient, url: str) -> int:
    return (await client.post(url, content=b"{}")).status_code


# --- the no-op baseline server --------------------------------------------------------


@litestar.post("/noop", status_code=200)
async def noop(request: litestar.Request) -> dict[str, str]:
    await request.body()
    return {"status": "accepted"}


def serve_noop(port: int, observed: bool) -> None:
    """`--serve-noop PORT`: the baseline, served exactly as `blossom api` serves the app.

    Same `uvicorn.Config` (httptools, no access log, no log config) and, like the app
    (`interfaces.cli.main.run`), uvloop. `observed` adds the app's own observability
    middleware (request span on the SDK tracer, request id, Prometheus).
    """
    middleware = None
    if observed:
        configure_tracing("none", "sms-blossom-bench")
        middleware = observability()
    app = litestar.Litestar(
        route_handlers=[noop], middleware=middleware, debug=False, logging_config=None
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


# --- the run --------------------------------------------------------------------------


async def add_shop(container: Container, domain: str) -> Shop:
    shop = Shop(id=uuid.uuid4(), domain=domain, name="bench", installed_at=datetime.now(UTC))
    async with container.uow.maintenance() as uow:
        created = await uow.shops.add(shop)
        await uow.commit()
    return created


async def add_shops(env: dict[str, str], database_url: str) -> tuple[Shop, Shop]:
    container = build_container(load_settings(env), database_url=database_url)
    try:
        return await add_shop(container, LOAD_SHOP), await add_shop(container, DUPLICATES_SHOP)
    finally:
        await container.aclose()


async def describe(owner: asyncpg.Connection, embedded: bool, opts: Options) -> None:
    version = await owner.fetchval("SHOW server_version")
    where = "embedded (pgserver, Unix socket)" if embedded else "external (DATABASE_URL, TCP)"
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"CPUs:        {os.cpu_count()} (load generator, API and Postgres share them)")
    print(f"Load avg:    {load} before the run (other work on the machine adds noise)")
    print(f"Postgres:    {version}, {where}")
    print(f"Python:      {sys.version.split()[0]}, load generator: {opts.client} client")
    print(
        f"Load:        maxima at concurrency {', '.join(map(str, opts.max_concurrency))}; "
        f"half rate and duplicates at {opts.concurrency}; {opts.duration:g}s per run "
        f"(+{WARMUP_SECONDS:g}s warm-up), {opts.deliveries} deliveries for duplicates"
    )


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    pid: int


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The load generator's cyclic GC off for a run: a full collection over thousands of
    pending tasks stalled it ~100 ms, and that stall read as the server's p99."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def checkpoints(owner: asyncpg.Connection) -> int:
    """Checkpoints so far: one flushes every dirty buffer and fsyncs, and commits slow down
    meanwhile, so a latency tail is read beside it (pg_stat_checkpointer from Postgres 17)."""
    if await owner.fetchval("SELECT to_regclass('pg_catalog.pg_stat_checkpointer')"):
        return await owner.fetchval(
            "SELECT num_timed + num_requested FROM pg_catalog.pg_stat_checkpointer"
        )
    return await owner.fetchval(
        "SELECT checkpoints_timed + checkpoints_req FROM pg_catalog.pg_stat_bgwriter"
    )


async def measured(
    target: Target,
    work: Callable[[Sender], Awaitable[Run]],
    opts: Options,
    owner: asyncpg.Connection,
    connections: int,
) -> Run:
    """Run `work` through a fresh sender with `connections` to `target`, noting the CPU each
    side used and the checkpoints Postgres started meanwhile."""
    sender = SENDERS[opts.client](target.url, connections)
    try:
        if opts.checkpoint_first:
            await owner.execute("CHECKPOINT")
        before = await checkpoints(owner)
        wal = await owner.fetchval("SELECT pg_current_wal_lsn()")
        meter = CpuMeter({"client": [os.getpid()], "server": [target.pid]})
        with paused_gc():
            run = await work(sender)
        run.cpu = meter.shares()
        run.checkpoints = await checkpoints(owner) - before
        run.wal_bytes = await owner.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::bigint", wal
        )
        return run
    finally:
        await sender.aclose()


def print_runs(runs: Sequence[Run]) -> None:
    print(
        f"\n{'run':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}   "
        "cpu % of a core: client / server / postgres"
    )
    print("-" * 112)
    for r in runs:
        cpu = " / ".join(f"{r.cpu.get(k, 0):.0f}" for k in ("client", "server", "postgres"))
        lag = f"  WAL {r.wal_bytes / max(1, r.requests) / 1024:.1f} KB/req"
        lag += f", {r.checkpoints} checkpoint(s)" if r.checkpoints else ""
        if r.lags:
            worst = 1000 * max(r.lags)
            lag += f"  (send lag p99 {1000 * percentile(r.lags, 0.99):.1f} ms, max {worst:.1f} ms)"
        print(
            f"{r.label:<34} {r.rps:>8,.0f} {r.ms(0.50):>8.1f} {r.ms(0.99):>8.1f} "
            f"{r.non_200:>8}   {cpu}{lag}"
        )
        if r.non_200:
            print(f"{'':<34} statuses: {dict(r.statuses)}")


def print_duplicates(
    plan: Plan, statuses: Counter[str], answers: Counter[str], count: InboxCount
) -> bool:
    expected = len(plan.distinct)
    ok = (
        count.rows == expected
        and count.distinct_ids == expected
        and count.ids_match
        and count.jobs == expected
        and count.jobs_with_row == expected
    )
    repeats = len(plan.ids) - expected
    print(
        f"\nDuplicates: sent {len(plan.ids)} deliveries, {expected} distinct webhook ids, "
        f"{repeats} repeats ({plan.close_repeats} right behind their original)"
    )
    print(f"  responses:       {dict(statuses)}; answers {dict(answers)}")
    print(f"  webhook_events:  expected {expected}, actual {count.rows}", end="")
    print(f" (same ids as sent: {count.ids_match})")
    print(f"  {TASK} jobs: expected {expected}, actual {count.jobs}")
    print(f"  jobs pointing at a distinct inbox row: {count.jobs_with_row}")
    print(f"  zero lost or duplicated: {'PASS' if ok else 'FAIL'}")
    return ok


def print_targets(
    app: Run, baselines: Sequence[Run], half: Run, duplicates_ok: bool, non_200: int
) -> None:
    """The target's ratio is against the bare no-op route; the others are shown beside it."""
    ratio = app.rps / baselines[0].rps
    rows = [
        (
            f"ingress >= {TARGET_RATIO:.0%} of no-op throughput",
            f"{ratio:.0%}",
            ratio >= TARGET_RATIO,
        ),
        (
            f"p99 < {TARGET_P99_MS:g} ms at half the max rate",
            f"{half.ms(0.99):.1f} ms",
            half.ms(0.99) < TARGET_P99_MS,
        ),
        ("zero lost or duplicated inbox rows", "PASS" if duplicates_ok else "FAIL", duplicates_ok),
    ]
    print()
    for baseline in baselines:
        name = baseline.label.partition(" (max")[0]
        print(f"Throughput ratio app / {name}: {app.rps / baseline.rps:.2f}")
    print(f"Non-200 responses in all runs: {non_200}")
    print("\nTargets (issue)                              measured    met")
    for name, value, met in rows:
        print(f"  {name:<42} {value:>9}    {'yes' if met else 'NO'}")


def rps(run: Run) -> float:
    return run.rps


async def maximum(
    target: Target, delivery: Delivery, opts: Options, owner: asyncpg.Connection
) -> list[Run]:
    """Closed-loop runs at each of `--max-concurrency`: a server that batches its commits
    reaches its plateau at a higher concurrency than one that does not, so each target's
    maximum is the best of its runs."""
    return [
        await measured(
            target,
            lambda s, c=c: closed_loop(s, delivery, opts, f"{target.label} (max, C={c})", c),
            opts,
            owner,
            c,
        )
        for c in opts.max_concurrency
    ]


async def run_phases(
    app: Target, baselines: Sequence[Target], shop: Shop, database_url: str, opts: Options
) -> None:
    load = signed_delivery(LOAD_SHOP)
    print(f"Delivery:    {TOPIC}, {len(load.body):,} bytes of JSON, signed once", flush=True)
    owner = await asyncpg.connect(libpq_url(database_url))
    try:
        sweeps = [await maximum(target, load, opts, owner) for target in (app, *baselines)]
        top, bases = max(sweeps[0], key=rps), [max(sweep, key=rps) for sweep in sweeps[1:]]
        half = await measured(
            app,
            lambda s: open_loop(s, load, top.rps / 2, opts.duration),
            opts,
            owner,
            opts.concurrency,
        )
    finally:
        await owner.close()
    runs = [run for sweep in sweeps for run in sweep] + [half]
    print_runs(runs)

    plan = duplicate_plan(opts.deliveries, opts.concurrency)
    dups = signed_delivery(DUPLICATES_SHOP)
    sender = SENDERS[opts.client](app.url, opts.concurrency)
    try:
        statuses, answers = await send_plan(sender, dups, plan, opts.concurrency)
    finally:
        await sender.aclose()
    owner = await asyncpg.connect(libpq_url(database_url))
    try:
        count = await count_inbox(owner, shop, plan)
    finally:
        await owner.close()
    ok = print_duplicates(plan, statuses, answers, count)
    failed = sum(n for status, n in statuses.items() if status != "200")
    non_200 = sum(r.non_200 for r in runs) + failed
    print_targets(top, bases, half, ok, non_200)


async def run(opts: Options) -> None:
    server_url, embedded = server()
    async with fresh_database(server_url) as url:
        owner = await asyncpg.connect(libpq_url(url))
        try:
            await describe(owner, embedded is not None, opts)
        finally:
            await owner.close()
        with tempfile.TemporaryDirectory() as tmp:
            await run_servers(url, Path(tmp), opts)
    del embedded  # keeps the embedded server up until the database is dropped


BASELINES = {"no-op": [], "no-op + observability": ["--observed"]}


async def run_servers(database_url: str, tmp: Path, opts: Options) -> None:
    app_port = free_port()
    env = app_env(database_url, app_port, tmp)
    shops = await add_shops(env, database_url)
    app_base = f"http://127.0.0.1:{app_port}"
    api = [str(REPO / ".venv" / "bin" / "blossom"), "api"]
    async with httpx.AsyncClient(timeout=5.0) as probe, contextlib.AsyncExitStack() as stack:
        started = time.perf_counter()
        app_proc = await stack.enter_async_context(
            serving(
                "blossom api",
                api,
                env,
                tmp / "api.log",
                lambda: get_status(probe, f"{app_base}/readyz"),
            )
        )
        baselines = []
        for index, (label, flags) in enumerate(BASELINES.items()):
            port = free_port()
            url = f"http://127.0.0.1:{port}/noop"
            proc = await stack.enter_async_context(
                serving(
                    label,
                    [sys.executable, str(SCRIPT), "--serve-noop", str(port), *flags],
                    env,
                    tmp / f"noop-{index}.log",
                    lambda url=url: post_status(probe, url),
                )
            )
            baselines.append(Target(label, url, proc.pid))
        print(f"Servers:     ready in {time.perf_counter() - started:.1f}s", flush=True)
        await run_phases(
            Target("app", f"{app_base}/webhooks/shopify", app_proc.pid),
            baselines,
            shops[1],
            database_url,
            opts,
        )


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, int | None, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="connections for the half-rate and duplicates runs (32)",
    )
    parser.add_argument(
        "--max-concurrency",
        default="32,64",
        help="concurrent senders of each maximum run, comma-separated; each target's "
        "maximum is its best (32,64)",
    )
    parser.add_argument(
        "--deliveries", type=int, default=5000, help="deliveries in the duplicates run (5000)"
    )
    parser.add_argument(
        "--client",
        choices=sorted(SENDERS),
        default="raw",
        help="load generator: raw asyncio HTTP/1.1 (default) or httpx.AsyncClient",
    )
    parser.add_argument(
        "--checkpoint-first",
        action="store_true",
        help="CHECKPOINT before each run (needs a superuser or pg_checkpoint), so no run "
        "inherits the WAL of the one before",
    )
    parser.add_argument("--serve-noop", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--observed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    opts = Options(
        args.duration,
        args.concurrency,
        tuple(int(c) for c in args.max_concurrency.split(",")),
        args.deliveries,
        args.client,
        args.checkpoint_first,
    )
    return opts, args.serve_noop, args.observed


def main() -> None:
    opts, noop_port, observed = parse_args()
    if noop_port is not None:
        serve_noop(noop_port, observed)
        return
    started = time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(opts))
    print(f"\nTotal wall time: {time.perf_counter() - started:.1f}s")
    print(f"Load avg after: {', '.join(f'{n:.2f}' for n in os.getloadavg())}")


if __name__ == "__main__":
    main()
