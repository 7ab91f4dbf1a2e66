"""Session tokens guard /api/v1; Shopify's proxy signature guards /proxy."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from infrastructure.shopify.signatures import encode_session_token, sign_app_proxy_query
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.support.http import client
from tests.support.shopify import API_KEY, API_SECRET

pytestmark = pytest.mark.usefixtures("clean_db")


def _token(domain: str, *, secret: str = API_SECRET, aud: str = API_KEY, age: int = 0) -> str:
    now = int(time.time()) - age
    claims = {
        "iss": f"https://{domain}/admin",
        "dest": f"https://{domain}",
        "aud": aud,
        "sub": "42",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": "jti",
        "sid": "sid",
    }
    return encode_session_token(claims, secret)


async def _get_shop(container, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client(create_app(container)) as http:
        return await http.get("/api/v1/shop", headers=headers)


async def test_valid_session_token_reads_its_own_shop_only(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    response = await _get_shop(container, _token(shop_a.domain))
    other = await _get_shop(container, _token(shop_b.domain))
    assert response.status_code == 200
    assert response.json()["id"] == str(shop_a.id) and response.json()["installed"] is True
    assert other.json()["id"] == str(shop_b.id)


async def test_shop_comes_from_the_token_never_from_the_query(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    async with client(create_app(container)) as http:
        response = await http.get(
            "/api/v1/shop",
            params={"shop": shop_b.domain, "shop_id": str(shop_b.id)},
            headers={"Authorization": f"Bearer {_token(shop_a.domain)}"},
        )
    assert response.json()["id"] == str(shop_a.id)


@pytest.mark.parametrize(
    "case",
    ["missing", "expired", "wrong_audience", "wrong_signature", "unknown_shop", "uninstalled"],
)
async def test_bad_session_tokens_are_401_problems(container, case):
    shop = await add_shop(container)
    if case == "uninstalled":
        async with container.uow.for_shop(shop.id) as uow:
            shop.mark_uninstalled(container.clock.now())
            await uow.shops.save(shop)
            await uow.commit()
    token = {
        "missing": None,
        "expired": _token(shop.domain, age=120),
        "wrong_audience": _token(shop.domain, aud="someone-else"),
        "wrong_signature": _token(shop.domain, secret="not-the-secret"),
        "unknown_shop": _token("nobody-here.myshopify.com"),
        "uninstalled": _token(shop.domain),
    }[case]
    response = await _get_shop(container, token)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-shopify-retry-invalid-session-request"] == "1"


def _proxy_query(
    domain: str, *, timestamp: int | None = None, customer: str = ""
) -> list[tuple[str, str]]:
    return [
        ("shop", domain),
        ("logged_in_customer_id", customer),
        ("path_prefix", "/apps/sms"),
        ("timestamp", str(timestamp or int(time.time()))),
    ]


async def _proxy(container, pairs: list[tuple[str, str]], *, signature: str | None):
    query = urlencode(pairs + ([("signature", signature)] if signature else []))
    async with client(create_app(container)) as http:
        return await http.get(f"/proxy/ping?{query}")


async def test_signed_proxy_request_renders_the_shop_page_uncached(container):
    shop = await add_shop(container)
    pairs = _proxy_query(shop.domain, customer="7012345678")
    response = await _proxy(container, pairs, signature=sign_app_proxy_query(pairs, API_SECRET))
    assert response.status_code == 200
    assert shop.name in response.text and "signed in" in response.text
    assert response.headers["cache-control"] == "no-store, private"


@pytest.mark.parametrize("case", ["tampered", "missing", "stale", "unknown_shop"])
async def test_unsigned_tampered_or_stale_proxy_requests_get_a_friendly_401(container, case):
    shop = await add_shop(container)
    domain = "nobody-here.myshopify.com" if case == "unknown_shop" else shop.domain
    stamp = int(time.time()) - 3600 if case == "stale" else None
    pairs = _proxy_query(domain, timestamp=stamp)
    signature = sign_app_proxy_query(pairs, API_SECRET)
    if case == "tampered":
        pairs[1] = ("logged_in_customer_id", "1")
    response = await _proxy(container, pairs, signature=None if case == "missing" else signature)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "expired" in response.text and "Traceback" not in response.text
