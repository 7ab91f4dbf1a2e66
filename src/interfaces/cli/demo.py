"""`blossom demo`: the whole app against a fake Shopify, with a demo shop and sample data."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from urllib.parse import urlencode

import click
import httpx

from infrastructure.db import migrate
from infrastructure.shopify.fake_server import FakeShopify, send_webhook
from infrastructure.shopify.signatures import encode_session_token, sign_app_proxy_query
from interfaces.bootstrap import Container, build_container, resolve_database_url
from interfaces.cli.main import run, settings_or_exit, stop_event_on_signals
from interfaces.cli.serve import serve_everything

DEMO_SHOP = "blossom-demo.myshopify.com"
TOKEN_HOURS = 8


@click.command()
def demo() -> None:
    """Run API and worker against a loopback fake Shopify, install a demo shop and send it
    sample webhooks; prints a session token for /api/v1 and a signed storefront link."""
    settings = settings_or_exit()
    url, embedded = resolve_database_url(settings)
    migrate.upgrade(url)

    async def main() -> None:
        async with FakeShopify(settings.shopify_api_key, settings.shopify_api_secret) as fake:
            local = dataclasses.replace(settings, shopify_api_base=fake.api_base)
            container = build_container(local, database_url=url, embedded=embedded)
            stop = stop_event_on_signals()
            try:
                fake.add_shop(
                    DEMO_SHOP,
                    name="Blossom Demo",
                    currency="EUR",
                    timezone="Europe/Berlin",
                    country="DE",
                )
                credentials = await container.shopify_auth.exchange_code(
                    DEMO_SHOP, fake.issue_code(DEMO_SHOP)
                )
                await container.install_shop()(DEMO_SHOP, credentials, source="demo")
                serving = asyncio.create_task(serve_everything(container, stop))
                base = f"http://{settings.host}:{settings.port}"
                await _until_ready(base, serving)
                await _sample_webhooks(container, base)
                click.echo(_banner(container, base))
                await serving
            finally:
                await container.aclose()

    run(main)


async def _until_ready(base: str, serving: asyncio.Task[None]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        for _ in range(300):
            if serving.done():
                serving.result()
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise click.ClickException("the API did not become ready")


async def _sample_webhooks(container: Container, base: str) -> None:
    samples = [
        (
            "customers_marketing_consent/update",
            {
                "id": 1001,
                "phone": "+4915112345678",
                "sms_marketing_consent": {
                    "state": "subscribed",
                    "opt_in_level": "single_opt_in",
                    "consent_updated_at": "2026-11-01T10:00:00Z",
                },
            },
        ),
        (
            "checkouts/create",
            {
                "token": "demo-checkout",
                "phone": "+4915198765432",
                "buyer_accepts_sms_marketing": True,
                "customer": {"id": 1002},
            },
        ),
    ]
    async with httpx.AsyncClient(base_url=base) as http:
        for topic, payload in samples:
            await send_webhook(
                http,
                "/webhooks/shopify",
                topic=topic,
                shop=DEMO_SHOP,
                payload=payload,
                secret=container.settings.shopify_api_secret,
            )


def _banner(container: Container, base: str) -> str:
    settings = container.settings
    now = int(time.time())
    token = encode_session_token(
        {
            "iss": f"https://{DEMO_SHOP}/admin",
            "dest": f"https://{DEMO_SHOP}",
            "aud": settings.shopify_api_key,
            "sub": "1",
            "exp": now + TOKEN_HOURS * 3600,
            "nbf": now,
            "iat": now,
            "jti": "demo",
            "sid": "demo",
        },
        settings.shopify_api_secret,
    )
    pairs = [
        ("shop", DEMO_SHOP),
        ("logged_in_customer_id", ""),
        ("path_prefix", "/apps/sms"),
        ("timestamp", str(now)),
    ]
    signed = urlencode(
        [*pairs, ("signature", sign_app_proxy_query(pairs, settings.shopify_api_secret))]
    )
    return (
        f"Demo shop {DEMO_SHOP} installed against a fake Shopify; sample webhooks sent.\n"
        f"  Session token ({TOKEN_HOURS} h):\n    {token}\n"
        f"  Try: curl -H 'Authorization: Bearer <token>' {base}/api/v1/contacts\n"
        f"  Storefront sign-up (link valid 90 s): {base}/proxy/signup?{signed}"
    )
