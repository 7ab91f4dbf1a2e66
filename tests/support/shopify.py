"""A fake Shopify wired to a container of its own (the container's Shopify origin
points at the fake), and helpers to install shops through it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

from domain.shops import Shop
from infrastructure.shopify.fake_server import FakeShopify
from infrastructure.shopify.signatures import sign_app_proxy_query
from interfaces.bootstrap import Container, build_container
from tests.support.settings import make_settings

API_KEY = "test-api-key"
API_SECRET = "test-api-secret"


@asynccontextmanager
async def fake_shopify_container(
    database_url: str,
    data_dir: Path,
    env: dict[str, str] | None = None,
    **fake_options: object,
) -> AsyncIterator[tuple[FakeShopify, Container]]:
    async with FakeShopify(API_KEY, API_SECRET, **fake_options) as fake:
        settings = make_settings(data_dir, SHOPIFY_API_BASE=fake.api_base, **(env or {}))
        container = build_container(settings, database_url=database_url)
        async with container.queue.open_async():
            try:
                yield fake, container
            finally:
                await container.aclose()


async def install(fake: FakeShopify, container: Container, domain: str | None = None) -> Shop:
    domain = domain or f"shop-{uuid.uuid4().hex[:8]}.myshopify.com"
    fake.add_shop(domain, name="Fake " + domain.split(".")[0])
    credentials = await container.shopify_auth.exchange_code(domain, fake.issue_code(domain))
    return await container.install_shop()(domain, credentials, source="test")


def proxy_path(path: str, shop: Shop, **extra: str) -> str:
    """`path` under /proxy as Shopify's app proxy forwards it: signed, nobody logged in."""
    pairs = [
        ("shop", shop.domain),
        ("logged_in_customer_id", ""),
        ("path_prefix", "/apps/sms"),
        ("timestamp", str(int(time.time()))),
        *extra.items(),
    ]
    signature = sign_app_proxy_query(pairs, API_SECRET)
    return f"/proxy{path}?{urlencode([*pairs, ('signature', signature)])}"
