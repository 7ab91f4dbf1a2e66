"""Operator commands for Shopify: custom-app installs and the webhook inbox."""

from __future__ import annotations

import subprocess

import pytest

from domain.events import EventStatus
from infrastructure.queue.retry import BackoffRetry
from infrastructure.shopify.fake_server import send_webhook
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.support.http import client
from tests.support.processes import blossom, child_env
from tests.support.queue import drain
from tests.support.settings import make_environ
from tests.support.shopify import fake_shopify_container

pytestmark = pytest.mark.usefixtures("clean_db")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(blossom(*args), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("webhooks_via", ["api", "toml"])
async def test_custom_app_install_registers_webhooks_without_migrating_the_token(
    database_url, data_dir, webhooks_via
):
    # Also when the public app's shopify.app.toml declares the subscriptions: that file
    # configures the public app only, and a custom app's shop would otherwise get none.
    settings = {"SHOPIFY_WEBHOOKS_VIA": webhooks_via}
    async with fake_shopify_container(database_url, data_dir, settings) as (fake, container):
        domain = "custom-blossom.myshopify.com"
        fake.add_shop(domain, name="Custom Blossom")
        token = fake.issue_legacy_token(domain)
        env = child_env(
            **make_environ(data_dir, SHOPIFY_API_BASE=fake.api_base, **settings),
            DATABASE_URL=database_url,
        )
        result = _cli(
            env,
            "shops",
            "install",
            domain,
            "--access-token",
            token,
            "--scopes",
            "read_customers,read_orders",
        )
        assert result.returncode == 0, result.stderr
        await drain(container, "webhooks")

        async with container.uow.for_shop_domain(domain) as uow:
            shop = await uow.shops.get(uow.shop_id)
            credentials = await uow.credentials.get()
    assert shop.name == "Custom Blossom"
    assert credentials.custom_app and credentials.access_token == token
    assert fake.token_exchanges[domain] == 0
    topics = {s["topic"] for s in fake.shops[domain].webhook_subscriptions}
    assert {"APP_UNINSTALLED", "ORDERS_CREATE", "CUSTOMERS_UPDATE"} <= topics
    assert "INVENTORY_LEVELS_UPDATE" not in topics  # read_inventory was not granted


async def test_cli_lists_shows_and_replays_failed_webhooks(
    container, database_url, data_dir, monkeypatch
):
    shop = await add_shop(container)

    async def broken(uow, event, payload):
        raise RuntimeError("handler broke")

    monkeypatch.setattr(type(container), "webhook_handlers", lambda self: {"orders/create": broken})
    task = container.queue.tasks["events:process_webhook"]
    monkeypatch.setattr(task, "retry_strategy", BackoffRetry(max_attempts=1))
    async with client(create_app(container)) as http:
        await send_webhook(
            http,
            "/webhooks/shopify",
            topic="orders/create",
            shop=shop.domain,
            payload={"id": 99, "note": "visible only with --payload"},
            secret=container.settings.shopify_api_secret,
        )
    await drain(container, "webhooks")
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=EventStatus.FAILED, topic=None, limit=5)

    env = child_env(**make_environ(data_dir), DATABASE_URL=database_url)
    listed = _cli(env, "webhooks", "list", "--status", "failed")
    shown = _cli(env, "webhooks", "show", str(event.id))
    with_payload = _cli(env, "webhooks", "show", str(event.id), "--payload")
    replayed = _cli(env, "webhooks", "replay", "--failed", "--shop", shop.domain)

    assert str(event.id) in listed.stdout
    assert "handler broke" in shown.stdout and "visible only" not in shown.stdout
    assert "visible only with --payload" in with_payload.stdout
    assert replayed.returncode == 0 and "1 failed event(s)" in replayed.stdout
    async with container.uow.for_shop(shop.id) as uow:
        assert (await uow.webhooks.get(event.id))[0].status is EventStatus.RECEIVED


async def test_replaying_one_event_under_another_or_unknown_shop_touches_nothing(
    container, database_url, data_dir
):
    """`--shop` names whose event the operator means: an event of another shop is not
    theirs to replay, and an unknown shop is an error, not ignored."""
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    async with client(create_app(container)) as http:
        await send_webhook(
            http,
            "/webhooks/shopify",
            topic="orders/create",
            shop=shop_a.domain,
            payload={"id": 99},
            secret=container.settings.shopify_api_secret,
        )
    async with container.uow.for_shop(shop_a.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=5)
        await uow.webhooks.mark(event.id, EventStatus.FAILED, error="handler broke")
        await uow.commit()

    env = child_env(**make_environ(data_dir), DATABASE_URL=database_url)
    other = _cli(env, "webhooks", "replay", str(event.id), "--shop", shop_b.domain)
    unknown = _cli(env, "webhooks", "replay", str(event.id), "--shop", "nobody.myshopify.com")

    assert other.returncode == 1 and f"no event {event.id}" in other.stderr
    assert unknown.returncode == 1 and "no shop nobody.myshopify.com" in unknown.stderr
    async with container.uow.for_shop(shop_a.id) as uow:
        assert (await uow.webhooks.get(event.id))[0].status is EventStatus.FAILED
