"""What the HTTP stack costs a request before any handler work: CPU per request, in process.

Run from the repository root (a few seconds):

    .venv/bin/python bench/http_stack.py [--requests N]

Drives ASGI apps directly (no server, no sockets, no database) with a signed-webhook-sized
POST (7.6 KB body, Shopify's headers) against a route that reads the body and answers
`{"status": "accepted"}`, as `bench/webhook_ingress.py`'s no-op baseline does. It builds the
route bare, then with `interfaces.http.app.observability()`'s middleware added one at a
time (the same objects `create_app` installs: request span, request id, Prometheus), with
tracing configured as `blossom api` configures it. CPU time is `time.process_time()` over
N requests after a warm-up; run-to-run noise is a few percent.

It tells how much of ingress's budget the stack takes before our own code runs, which
bounds what `bench/webhook_ingress.py` can show against its no-op baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # without an install

from litestar import Litestar, post

from infrastructure.telemetry.tracing import configure_tracing
from interfaces.http.app import observability

BODY = b"x" * 7_600
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
    (b"x-shopify-topic", b"orders/create"),
    (b"x-shopify-hmac-sha256", b"c2lnbmF0dXJlLW9mLXRoZS1ib2R5LWJhc2U2NC1lbmNvZGVk"),
    (b"x-shopify-shop-domain", b"bench-shop.myshopify.com"),
    (b"x-shopify-api-version", b"2026-07"),
    (b"x-shopify-webhook-id", b"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    (b"x-shopify-event-id", b"98880550-7158-44d4-b7cd-2c97c8a091b5"),
    (b"x-shopify-triggered-at", b"2026-05-04T10:15:30.123Z"),
]
WARMUP = 1_000


@post("/webhooks/shopify", status_code=200)
async def accept(body: bytes) -> dict[str, str]:
    return {"status": "accepted"}


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/shopify",
        "raw_path": b"/webhooks/shopify",
        "query_string": b"",
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 50_000),
        "server": ("127.0.0.1", 8_000),
    }


async def one(app: Litestar) -> None:
    messages = [{"type": "http.request", "body": BODY, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        return None

    await app(scope(), receive, send)


async def per_request_us(app: Litestar, requests: int) -> float:
    for _ in range(WARMUP):
        await one(app)
    started = time.process_time()
    for _ in range(requests):
        await one(app)
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="timed requests (20000)")
    requests = parser.parse_args().requests
    configure_tracing("none", "sms-blossom-bench")
    names = ["request span", "request id", "Prometheus"]
    print(f"{'stack':<40} {'us/request':>10} {'added':>8}")
    previous = None
    for count in range(len(names) + 1):
        app = Litestar([accept], middleware=observability()[:count], logging_config=None)
        cost = asyncio.run(per_request_us(app, requests))
        label = "bare route" if count == 0 else f"+ {names[count - 1]}"
        added = "" if previous is None else f"{cost - previous:+8.1f}"
        print(f"{label:<40} {cost:>10.1f} {added:>8}")
        previous = cost


if __name__ == "__main__":
    main()
