"""Top-ups through Shopify Billing, against the fake Shopify."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from infrastructure.shopify.fake_server import send_webhook
from interfaces.http.app import create_app
from tests.integration.test_session_and_proxy import _token
from tests.support.http import client
from tests.support.queue import drain
from tests.support.shopify import fake_shopify_container, install

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_topup_confirmed_by_return_and_webhook_adds_credits_once(database_url, data_dir):
    env = {"TRIAL_CREDITS": "0"}
    async with fake_shopify_container(database_url, data_dir, env) as (fake, container):
        shop = await install(fake, container)
        auth = {"Authorization": f"Bearer {_token(shop.domain)}"}
        async with client(create_app(container)) as http:
            started = await http.post(
                "/api/v1/wallet/topups", headers=auth, json={"package": "starter"}
            )
            [purchase] = fake.shops[shop.domain].purchases
            early = await http.get(
                "/billing/return",
                params={"shop": shop.domain, "topup": _topup_id(purchase["returnUrl"])},
            )
            fake.approve_purchase(shop.domain, purchase["id"])
            back = await http.get(
                "/billing/return",
                params={"shop": shop.domain, "topup": _topup_id(purchase["returnUrl"])},
            )
            hook = await _purchase_active(http, container, shop, purchase)
            await drain(container, "webhooks")
            wallet = (await http.get("/api/v1/wallet", headers=auth)).json()
            bad_package = await http.post(
                "/api/v1/wallet/topups", headers=auth, json={"package": "gold"}
            )
        async with container.uow.for_shop(shop.id) as uow:
            topups = await uow.session.scalar(
                text("SELECT count(*) FROM wallet_transactions WHERE kind = 'topup'")
            )
            balanced = await uow.wallet.balanced()
    assert started.status_code == 201 and "confirm_purchase" in started.json()["confirmation_url"]
    assert purchase["test"] is True and purchase["price"]["amount"] == "10.00"
    assert early.status_code == 302 and back.status_code == 302 and hook.status_code == 200
    assert wallet["balance"] == 10_000 and topups == 1 and balanced
    assert bad_package.status_code == 422


async def test_a_purchase_shopify_refuses_or_cannot_be_asked_for_is_a_problem_not_a_500(
    database_url, data_dir
):
    async with fake_shopify_container(database_url, data_dir) as (fake, container):
        shop = await install(fake, container)
        auth = {"Authorization": f"Bearer {_token(shop.domain)}"}
        async with client(create_app(container)) as http:
            fake.fail_next(402)  # the store is frozen: Shopify charges it nothing
            frozen = await http.post(
                "/api/v1/wallet/topups", headers=auth, json={"package": "starter"}
            )
            fake.shops[shop.domain].access_tokens.clear()  # revoked behind our back
            revoked = await http.post(
                "/api/v1/wallet/topups", headers=auth, json={"package": "starter"}
            )
            after = await http.post(
                "/api/v1/wallet/topups", headers=auth, json={"package": "starter"}
            )
    assert frozen.status_code == 409 and "refused" in frozen.json()["detail"]
    assert revoked.status_code == 503 and "reload the app" in revoked.json()["detail"]
    assert after.status_code == 503, "the dropped token: the same answer, no 500"
    for response in (frozen, revoked, after):
        assert response.headers["content-type"].startswith("application/problem+json")
    assert fake.shops[shop.domain].purchases == []


async def test_the_purchase_webhook_alone_credits_a_merchant_who_never_came_back(
    database_url, data_dir
):
    env = {"TRIAL_CREDITS": "0"}
    async with fake_shopify_container(database_url, data_dir, env) as (fake, container):
        shop = await install(fake, container)
        auth = {"Authorization": f"Bearer {_token(shop.domain)}"}
        async with client(create_app(container)) as http:
            await http.post("/api/v1/wallet/topups", headers=auth, json={"package": "starter"})
            [purchase] = fake.shops[shop.domain].purchases
            fake.approve_purchase(shop.domain, purchase["id"])
            hook = await _purchase_active(http, container, shop, purchase)
            await drain(container, "webhooks")
            wallet = (await http.get("/api/v1/wallet", headers=auth)).json()
    assert hook.status_code == 200
    assert wallet["balance"] == 10_000


async def test_a_merchant_back_while_shopify_is_unreachable_lands_in_the_app_and_is_credited(
    database_url, data_dir
):
    # They have paid: an error page now would be wrong, and the webhook still credits them.
    env = {"TRIAL_CREDITS": "0"}
    async with fake_shopify_container(database_url, data_dir, env) as (fake, container):
        shop = await install(fake, container)
        auth = {"Authorization": f"Bearer {_token(shop.domain)}"}
        async with client(create_app(container)) as http:
            await http.post("/api/v1/wallet/topups", headers=auth, json={"package": "starter"})
            [purchase] = fake.shops[shop.domain].purchases
            fake.approve_purchase(shop.domain, purchase["id"])
            fake.fail_next(429, retry_after=3600)  # longer than we ever wait: unavailable
            back = await http.get(
                "/billing/return",
                params={"shop": shop.domain, "topup": _topup_id(purchase["returnUrl"])},
            )
            before = (await http.get("/api/v1/wallet", headers=auth)).json()
            await _purchase_active(http, container, shop, purchase)
            await drain(container, "webhooks")
            after = (await http.get("/api/v1/wallet", headers=auth)).json()
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith(f"https://{shop.domain}/admin/apps/")
    assert before["balance"] == 0 and after["balance"] == 10_000


async def _purchase_active(http, container, shop, purchase):
    """Shopify's `app_purchases_one_time/update` for an approved purchase."""
    return await send_webhook(
        http,
        "/webhooks/shopify",
        topic="app_purchases_one_time/update",
        shop=shop.domain,
        payload={
            "app_purchase_one_time": {"admin_graphql_api_id": purchase["id"], "status": "ACTIVE"}
        },
        secret=container.settings.shopify_api_secret,
    )


def _topup_id(return_url: str) -> str:
    return return_url.split("topup=", 1)[1]


@pytest.mark.parametrize("shop", ["x\x00", "evil.example.com", ""])
async def test_return_with_a_malformed_shop_is_a_problem_not_a_500(container, shop):
    async with client(create_app(container)) as http:
        response = await http.get(
            "/billing/return",
            params={"shop": shop, "topup": "0d7f0a52-5b8e-4a8e-9d3c-7f4c2f1e9a10"},
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
