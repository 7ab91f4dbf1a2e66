"""Install through OAuth and token exchange, against the fake Shopify over real HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import text

from domain.events import topics_allowed_by
from infrastructure.shopify.signatures import encode_session_token, sign_oauth_query
from interfaces.http.app import create_app
from tests.support.http import client
from tests.support.queue import drain
from tests.support.shopify import API_KEY, API_SECRET, fake_shopify_container

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def shopify(database_url, data_dir):
    async with fake_shopify_container(database_url, data_dir) as pair:
        yield pair


async def _begin(http, domain: str) -> str:
    response = await http.get("/auth/install", params={"shop": domain})
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.netloc == domain and location.path == "/admin/oauth/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [API_KEY]
    return query["state"][0]


def _callback_query(domain: str, code: str, state: str, *, secret: str = API_SECRET) -> str:
    params = {
        "code": code,
        "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc21zLWRlbW8",
        "shop": domain,
        "state": state,
        "timestamp": str(int(time.time())),
    }
    return urlencode({**params, "hmac": sign_oauth_query(params, secret)})


async def test_oauth_callback_installs_the_shop_and_registers_webhooks(shopify):
    fake, container = shopify
    domain = "blossom-oauth.myshopify.com"
    fake.add_shop(domain, name="Blossom OAuth", currency="EUR", timezone="Europe/Berlin")
    async with client(create_app(container)) as http:
        state = await _begin(http, domain)
        response = await http.get(
            f"/auth/callback?{_callback_query(domain, fake.issue_code(domain), state)}"
        )
    assert response.status_code == 302
    assert response.headers["location"] == f"https://{domain}/admin/apps/{API_KEY}"

    await drain(container, "webhooks")

    async with container.uow.for_shop_domain(domain) as uow:
        shop = await uow.shops.get(uow.shop_id)
        credentials = await uow.credentials.get()
        stored = await uow.session.scalar(text("SELECT access_token FROM shop_credentials"))
    assert shop.installed and shop.name == "Blossom OAuth" and shop.currency == "EUR"
    assert credentials.access_token in fake.shops[domain].access_tokens
    assert credentials.expiring and credentials.refresh_token == fake.shops[domain].refresh_token
    assert credentials.access_token not in stored, "the token is encrypted at rest"
    topics = {s["topic"] for s in fake.shops[domain].webhook_subscriptions}
    expected = {t.replace("/", "_").upper() for t in topics_allowed_by(credentials.scopes)}
    assert topics == expected
    assert {s["uri"] for s in fake.shops[domain].webhook_subscriptions} == {
        f"{container.settings.app_url}/webhooks/shopify"
    }


async def test_a_refused_topic_costs_only_itself_and_is_on_record(shopify):
    fake, container = shopify
    domain = "blossom-unapproved.myshopify.com"
    fake.add_shop(domain, name="Blossom Unapproved")
    fake.shops[domain].refused_topics = {"CHECKOUTS_CREATE"}
    async with client(create_app(container)) as http:
        state = await _begin(http, domain)
        await http.get(f"/auth/callback?{_callback_query(domain, fake.issue_code(domain), state)}")
    await drain(container, "webhooks")

    topics = {s["topic"] for s in fake.shops[domain].webhook_subscriptions}
    assert "CHECKOUTS_CREATE" not in topics and {"ORDERS_CREATE", "SHOP_UPDATE"} <= topics
    async with container.uow.for_shop_domain(domain) as uow:
        shop = await uow.shops.get(uow.shop_id)
        refused = await uow.session.scalar(
            text("SELECT details FROM audit_log WHERE action = 'webhooks.subscription_refused'")
        )
    assert shop.name == "Blossom Unapproved", "the shop's settings were still copied"
    assert list(refused) == ["checkouts/create"]


async def test_tampered_hmac_reused_or_unknown_state_and_bad_shop_are_refused(shopify):
    fake, container = shopify
    domain = "blossom-refuse.myshopify.com"
    fake.add_shop(domain)
    async with client(create_app(container)) as http:
        state = await _begin(http, domain)
        good = _callback_query(domain, fake.issue_code(domain), state)
        tampered = await http.get("/auth/callback?" + good.replace("code=", "code=0"))
        unknown = await http.get(
            "/auth/callback?" + _callback_query(domain, fake.issue_code(domain), "ab" * 32)
        )
        malformed = await http.get(
            "/auth/callback?" + _callback_query(domain, fake.issue_code(domain), "\x00")
        )
        first = await http.get("/auth/callback?" + good)
        reused = await http.get("/auth/callback?" + good)
        bad_shop = await http.get("/auth/install", params={"shop": "evil.example.com"})
        bad_callback = await http.get(
            "/auth/callback?" + _callback_query("evil.example.com", "c0de", state)
        )
    assert tampered.status_code == 401
    assert unknown.status_code == 400 and "start again" in unknown.json()["detail"]
    assert malformed.status_code == 400, "a signed callback with a NUL state is no 500"
    assert first.status_code == 302
    assert reused.status_code == 400
    assert bad_shop.status_code == 400 and bad_callback.status_code == 400
    for response in (tampered, unknown, malformed, reused, bad_shop, bad_callback):
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_reinstall_is_idempotent_and_restores_an_uninstalled_shop(shopify):
    fake, container = shopify
    domain = "blossom-again.myshopify.com"
    fake.add_shop(domain)
    first = await container.install_shop()(
        domain,
        await container.shopify_auth.exchange_code(domain, fake.issue_code(domain)),
        source="test",
    )
    async with container.uow.for_shop(first.id) as uow:
        shop = await uow.shops.get(first.id)
        shop.mark_uninstalled(container.clock.now())
        await uow.shops.save(shop)
        await uow.commit()
    again = await container.install_shop()(
        domain,
        await container.shopify_auth.exchange_code(domain, fake.issue_code(domain)),
        source="test",
    )
    async with container.uow.maintenance() as uow:
        count = await uow.session.scalar(
            text("SELECT count(*) FROM shops WHERE domain = :d"), {"d": domain}
        )
    assert again.id == first.id and again.installed and count == 1


def _session_token(domain: str) -> str:
    now = int(time.time())
    return encode_session_token(
        {
            "iss": f"https://{domain}/admin",
            "dest": f"https://{domain}",
            "aud": API_KEY,
            "sub": "42",
            "exp": now + 60,
            "nbf": now,
            "iat": now,
            "jti": "j",
            "sid": "s",
        },
        API_SECRET,
    )


async def test_token_exchange_installs_on_first_use_and_then_reuses_the_token(shopify):
    fake, container = shopify
    domain = "blossom-embedded.myshopify.com"
    token = _session_token(domain)
    async with client(create_app(container)) as http:
        first = await http.post(
            "/auth/token-exchange", headers={"Authorization": f"Bearer {token}"}
        )
        second = await http.post(
            "/auth/token-exchange", headers={"Authorization": f"Bearer {token}"}
        )
        bad = await http.post("/auth/token-exchange", headers={"Authorization": "Bearer x.y.z"})
    assert first.status_code == 200 and first.json()["exchanged"] is True
    assert second.json()["exchanged"] is False
    assert fake.token_exchanges[domain] == 1
    assert bad.status_code == 401
    assert bad.headers["x-shopify-retry-invalid-session-request"] == "1"


async def test_subscriptions_declared_in_the_app_toml_are_not_duplicated_through_the_api(
    database_url, data_dir
):
    env = {"SHOPIFY_WEBHOOKS_VIA": "toml"}
    async with fake_shopify_container(database_url, data_dir, env) as (fake, container):
        domain = "blossom-toml.myshopify.com"
        fake.add_shop(domain, name="Blossom TOML")
        credentials = await container.shopify_auth.exchange_code(domain, fake.issue_code(domain))
        shop = await container.install_shop()(domain, credentials, source="test")
        await drain(container, "webhooks")
        async with container.uow.for_shop(shop.id) as uow:
            synced = await uow.shops.get(shop.id)
    assert fake.shops[domain].webhook_subscriptions == []
    assert synced.name == "Blossom TOML"


async def test_first_loads_at_once_install_the_shop_once_and_all_succeed(shopify):
    fake, container = shopify
    domain = "blossom-rush.myshopify.com"
    headers = {"Authorization": f"Bearer {_session_token(domain)}"}
    async with client(create_app(container)) as http:
        responses = await asyncio.gather(
            *(http.post("/auth/token-exchange", headers=headers) for _ in range(4))
        )
    assert [r.status_code for r in responses] == [200] * 4
    async with container.uow.maintenance() as uow:
        shops = await uow.session.scalar(
            text("SELECT count(*) FROM shops WHERE domain = :d"), {"d": domain}
        )
    assert shops == 1
    # Each exchange retires the previous refresh token: only one may happen, or the pair
    # stored last could be one whose refresh token Shopify no longer accepts.
    assert fake.token_exchanges[domain] == 1
    assert sorted(r.json()["exchanged"] for r in responses) == [False, False, False, True]
    async with container.uow.for_shop_domain(domain) as uow:
        stored = await uow.credentials.get()
    assert stored.refresh_token == fake.shops[domain].refresh_token


@pytest.mark.parametrize(
    ("status", "body", "answer"),
    [
        (400, {"error": "invalid_subject_token"}, 401),  # App Bridge retries with a new token
        (401, {"error": "invalid_client"}, 503),  # our API key or secret: not the merchant's
    ],
)
async def test_token_exchange_refused_by_shopify_is_answered_as_the_cause_says(
    shopify, status, body, answer
):
    fake, container = shopify
    domain = "blossom-refused.myshopify.com"
    fake.fail_next(status, body=body, path_contains="access_token")
    async with client(create_app(container)) as http:
        response = await http.post(
            "/auth/token-exchange", headers={"Authorization": f"Bearer {_session_token(domain)}"}
        )
    assert response.status_code == answer
    assert response.headers["content-type"].startswith("application/problem+json")
    if answer == 401:
        assert response.headers["x-shopify-retry-invalid-session-request"] == "1"


async def test_token_exchange_short_of_required_scopes_is_forbidden_not_retried(shopify):
    fake, container = shopify
    fake.granted_scopes = "write_orders"  # the app's TOML asks too little
    domain = "blossom-scopes.myshopify.com"
    async with client(create_app(container)) as http:
        response = await http.post(
            "/auth/token-exchange", headers={"Authorization": f"Bearer {_session_token(domain)}"}
        )
    assert response.status_code == 403
    assert "read_customers" in response.json()["detail"]
    assert "x-shopify-retry-invalid-session-request" not in response.headers


async def test_install_links_are_rate_limited_per_shop_and_stale_states_pruned(shopify):
    _, container = shopify
    domain = "blossom-loop.myshopify.com"
    async with container.uow.maintenance() as uow:
        await uow.oauth_states.put("stale", domain, container.clock.now() - timedelta(minutes=1))
        await uow.commit()
    async with client(create_app(container)) as http:
        answers = [
            (await http.get("/auth/install", params={"shop": domain})).status_code
            for _ in range(21)
        ]
        other = await http.get("/auth/install", params={"shop": "blossom-other.myshopify.com"})
        refused = await http.get("/auth/install", params={"shop": domain})
    assert answers == [302] * 20 + [429]
    assert other.status_code == 302, "the limit is per shop"
    assert int(refused.headers["retry-after"]) >= 1
    async with container.uow.maintenance() as uow:
        states = await uow.session.scalar(
            text("SELECT count(*) FROM oauth_states WHERE shop_domain = :d"), {"d": domain}
        )
    assert states == 20, "the stale state went when new ones came"
