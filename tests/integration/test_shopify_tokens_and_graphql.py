"""Expiring tokens and the Admin GraphQL client, against the fake Shopify."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from application.errors import (
    NotInstalled,
    ShopifyRejected,
    ShopifyUnauthorized,
    ShopifyUnavailable,
)
from application.ports import ShopRef
from application.shops.access_token import GetAccessToken
from domain.events import subscription_enum, topics_allowed_by
from domain.shops import ShopCredentials
from infrastructure.shopify.admin import HttpShopifyAdmin
from interfaces.http.app import create_app
from tests.integration.test_shopify_install import _session_token
from tests.support.http import client
from tests.support.shopify import fake_shopify_container, install

pytestmark = pytest.mark.usefixtures("clean_db")

CONSENT = """
mutation customerSmsMarketingConsentUpdate($input: CustomerSmsMarketingConsentUpdateInput!) {
  customerSmsMarketingConsentUpdate(input: $input) {
    customer { id }
    userErrors { field message code }
  }
}
"""


@pytest.fixture
async def shopify(database_url, data_dir):
    async with fake_shopify_container(database_url, data_dir) as pair:
        yield pair


async def _expire_soon(container, shop_id) -> ShopCredentials:
    async with container.uow.for_shop(shop_id) as uow:
        current = await uow.credentials.get()
        soon = ShopCredentials(
            current.access_token,
            current.scopes,
            access_expires_at=container.clock.now() + timedelta(minutes=2),
            refresh_token=current.refresh_token,
            refresh_expires_at=current.refresh_expires_at,
        )
        await uow.credentials.save(soon)
        await uow.commit()
    return soon


def _admin(container, **options) -> HttpShopifyAdmin:
    """The container's client, with options (backoff, clock) a test needs set."""
    tokens = GetAccessToken(container.uow, container.shopify_auth, container.clock)
    return HttpShopifyAdmin(
        container.http,
        api_version=container.settings.shopify_api_version,
        origin=container.settings.shopify_origin,
        access_token=lambda ref: tokens(ref.id, ref.domain),
        **options,
    )


async def test_token_near_expiry_is_refreshed_before_use_and_the_rotated_pair_stored(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    old = await _expire_soon(container, shop.id)

    info = await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))

    assert info.name.startswith("Fake")
    assert fake.refresh_count[shop.domain] == 1
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.credentials.get()
    assert stored.refresh_token == fake.shops[shop.domain].refresh_token != old.refresh_token
    assert not stored.needs_refresh(container.clock.now())


async def test_twenty_concurrent_calls_cause_exactly_one_refresh(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    await _expire_soon(container, shop.id)
    ref = ShopRef(shop.id, shop.domain)

    results = await asyncio.gather(*(container.shopify_admin.shop_info(ref) for _ in range(20)))

    assert len(results) == 20
    assert fake.refresh_count[shop.domain] == 1


async def test_a_refused_refresh_drops_the_dead_token_so_the_next_visit_exchanges_anew(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    await _expire_soon(container, shop.id)
    fake.shops[shop.domain].refresh_token = "revoked"  # Shopify no longer knows ours

    with pytest.raises(NotInstalled):
        await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))

    async with container.uow.for_shop(shop.id) as uow:
        assert await uow.credentials.get() is None
    token = _session_token(shop.domain)
    async with client(create_app(container)) as http:
        exchanged = await http.post(
            "/auth/token-exchange", headers={"Authorization": f"Bearer {token}"}
        )
    assert exchanged.json()["exchanged"] is True
    info = await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))
    assert info.name.startswith("Fake")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, {"errors": "Too many requests"}),
        (200, "<html>a proxy's error page</html>"),  # the answer is lost, not a refusal
        (200, {"access_token": "shpat_x", "expires_in": "soon"}),
    ],
)
async def test_a_refresh_that_was_not_refused_keeps_the_token_and_succeeds_when_retried(
    shopify, status, body
):
    fake, container = shopify
    shop = await install(fake, container)
    await _expire_soon(container, shop.id)
    fake.fail_next(status, body=body, path_contains="access_token")
    ref = ShopRef(shop.id, shop.domain)

    with pytest.raises(ShopifyUnavailable):
        await container.shopify_admin.shop_info(ref)

    info = await container.shopify_admin.shop_info(ref)  # the job's retry
    assert info.name.startswith("Fake")
    assert fake.refresh_count[shop.domain] == 1


async def test_legacy_non_expiring_token_is_migrated_once(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    legacy = fake.issue_legacy_token(shop.domain)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.credentials.save(ShopCredentials(legacy, ("read_customers",)))
        await uow.commit()
    ref = ShopRef(shop.id, shop.domain)

    await container.shopify_admin.shop_info(ref)
    await container.shopify_admin.shop_info(ref)

    async with container.uow.for_shop(shop.id) as uow:
        migrated = await uow.credentials.get()
    assert migrated.expiring and migrated.access_token != legacy
    assert fake.token_exchanges[shop.domain] == 1


async def test_client_never_overdraws_the_bucket_and_completes(database_url, data_dir):
    async with fake_shopify_container(
        database_url, data_dir, bucket_size=30.0, restore_rate=300.0
    ) as (fake, container):
        shop = await install(fake, container)
        fake.costs["shop"] = 10
        ref = ShopRef(shop.id, shop.domain)
        results = await asyncio.gather(*(container.shopify_admin.shop_info(ref) for _ in range(15)))
    assert len(results) == 15
    assert fake.throttled_count[shop.domain] == 0


async def test_throttled_responses_are_waited_out_not_failed(database_url, data_dir):
    async with fake_shopify_container(
        database_url, data_dir, bucket_size=10.0, restore_rate=100.0
    ) as (fake, container):
        shop = await install(fake, container)
        ref = ShopRef(shop.id, shop.domain)
        await container.shopify_admin.shop_info(ref)  # seeds the client's bucket model
        # Another app instance drained the bucket: the client's model is now optimistic.
        bucket = fake.buckets[shop.domain]
        bucket.available, bucket.updated_at = 0.0, fake.clock()
        fake.costs["shop"] = 10

        info = await container.shopify_admin.shop_info(ref)

    assert info.name
    assert fake.throttled_count[shop.domain] >= 1


async def test_429_with_retry_after_is_honoured(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    fake.fail_next(429, retry_after=0.5)

    await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))

    graphql = [r for r in fake.requests if "graphql" in r["path"]]
    refused, retried = graphql[-2], graphql[-1]
    assert refused["status"] == 429 and retried["status"] == 200
    assert retried["time"] - refused["time"] >= 0.5


async def test_5xx_is_retried(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    fake.fail_next(503, count=2)
    info = await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))
    assert info.name


async def test_user_errors_surface_as_typed_errors(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    variables = {
        "input": {
            "customerId": "gid://shopify/Customer/1",
            "smsMarketingConsent": {"marketingState": "REDACTED"},
        }
    }
    with pytest.raises(ShopifyRejected) as raised:
        await container.shopify_admin.mutate(
            ShopRef(shop.id, shop.domain), "customerSmsMarketingConsentUpdate", CONSENT, variables
        )
    assert raised.value.codes() == {"INVALID"}
    assert fake.shops[shop.domain].consent_updates == []


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (402, None),  # {"errors": "Payment Required"}: the shop is frozen
        (423, {"errors": "This shop is unavailable"}),
        (404, "<html>Not Found</html>"),
        (400, {"errors": {"query": "Required parameter missing"}}),
    ],
)
async def test_refusals_that_are_not_graphql_errors_surface_typed_and_unretried(
    shopify, status, body
):
    fake, container = shopify
    shop = await install(fake, container)
    fake.fail_next(status, body=body)
    with pytest.raises(ShopifyRejected, match=f"HTTP {status}"):
        await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))
    assert [r["status"] for r in fake.requests if "graphql" in r["path"]][-1] == status


async def test_a_retry_after_longer_than_a_worker_should_wait_fails_as_unavailable(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    fake.fail_next(429, retry_after=3600)
    # The timeout only turns a regression (an hour's wait) into a failure.
    with pytest.raises(ShopifyUnavailable, match="3600"):
        async with asyncio.timeout(30):
            await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))


async def test_revoked_token_is_a_typed_unauthorized_error(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    fake.shops[shop.domain].access_tokens.clear()
    with pytest.raises(ShopifyUnauthorized):
        await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))


async def test_concurrent_first_calls_all_fail_when_the_seeding_call_is_refused(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    fake.shops[shop.domain].access_tokens.clear()  # uninstalled: every call gets a 401
    ref = ShopRef(shop.id, shop.domain)
    # The first call goes alone to seed the bucket model; the others wait for it. Its
    # refusal must release them to fail too, not leave them waiting for ever (the
    # timeout only turns that hang into a failure).
    async with asyncio.timeout(30):
        results = await asyncio.gather(
            *(container.shopify_admin.shop_info(ref) for _ in range(3)), return_exceptions=True
        )
    # The refusal drops the token, so a call that looks for it afterwards finds none.
    assert type(results[0]) is ShopifyUnauthorized
    assert {type(r) for r in results[1:]} <= {ShopifyUnauthorized, NotInstalled}


# Shopify's own example (changelog "Improved GraphQL errors"): its internal errors come as
# a GraphQL error, with HTTP 200, rather than as a 500.
INTERNAL_ERROR = {
    "errors": [
        {
            "message": "Internal error. Looks like something went wrong on our end.",
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "d2f47302-8559"},
        }
    ]
}


def _retried(code: str) -> float:
    return REGISTRY.get_sample_value("blossom_shopify_graphql_retried_total", {"code": code}) or 0


async def test_an_internal_error_in_the_graphql_errors_is_retried_like_a_5xx(shopify, spans):
    fake, container = shopify
    shop = await install(fake, container)
    fake.fail_next(200, body=INTERNAL_ERROR)
    before = _retried("INTERNAL_SERVER_ERROR")

    info = await container.shopify_admin.shop_info(ShopRef(shop.id, shop.domain))

    assert info.name.startswith("Fake")
    assert _retried("INTERNAL_SERVER_ERROR") == before + 1, "on-call sees the retries"
    [call] = [s for s in spans.get_finished_spans() if s.name == "shopify.graphql"]
    assert dict(call.attributes) == {
        "shopify.shop": shop.domain,
        "graphql.operation": "shop",
        "shopify.attempts": 2,
    }


async def test_a_passing_internal_error_does_not_lose_a_webhook_subscription(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    fake.fail_next(200, body=INTERNAL_ERROR)  # the first topic's subscription

    await container.after_install()(shop.id)

    async with container.uow.for_shop(shop.id) as uow:
        credentials = await uow.credentials.get()
    subscribed = {s["topic"] for s in fake.shops[shop.domain].webhook_subscriptions}
    assert subscribed == {subscription_enum(t) for t in topics_allowed_by(credentials.scopes)}


async def test_an_internal_error_that_persists_is_unavailable_not_rejected(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    fake.fail_next(200, body=INTERNAL_ERROR, count=100)
    admin = _admin(container, max_attempts=3, backoff_seconds=0.001)
    # Unavailable is transient: the job retries later instead of failing for good.
    with pytest.raises(ShopifyUnavailable):
        await admin.shop_info(ShopRef(shop.id, shop.domain))
    assert [r["status"] for r in fake.requests if "graphql" in r["path"]][-3:] == [200] * 3


class SharedClock:
    """One clock for the fake's bucket and the client's model of it, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_calls_cancelled_while_waiting_for_the_bucket_give_their_reservation_back(
    database_url, data_dir
):
    clock = SharedClock()
    # 10 points, refilled in 1000 s of the shared clock: any real wait the model asks for
    # is far longer than the test's timeout.
    async with fake_shopify_container(
        database_url,
        data_dir,
        bucket_size=10.0,
        restore_rate=0.01,
        clock=clock,
        access_token_ttl=10**7,
    ) as (fake, container):
        shop = await install(fake, container)
        fake.costs["shop"] = 10
        admin, ref = _admin(container, clock=clock), ShopRef(shop.id, shop.domain)
        await admin.shop_info(ref)  # seeds the model: the bucket is empty

        waiting = [asyncio.create_task(admin.shop_info(ref)) for _ in range(3)]
        await asyncio.sleep(0)  # one loop turn: each task reserves, then waits to be sent
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)

        clock.now += 4000  # the bucket is full again
        await admin.shop_info(ref)  # the answer re-seeds the model
        clock.now += 1000  # and full again
        async with asyncio.timeout(10):  # only turns a wait of thousands of seconds into a fail
            await admin.shop_info(ref)


async def test_a_token_shopify_no_longer_accepts_is_dropped_so_the_next_visit_exchanges_anew(
    shopify,
):
    fake, container = shopify
    shop = await install(fake, container)
    fake.shops[shop.domain].access_tokens.clear()  # revoked, and no app/uninstalled came
    ref = ShopRef(shop.id, shop.domain)

    with pytest.raises(ShopifyUnauthorized):
        await container.shopify_admin.shop_info(ref)

    async with container.uow.for_shop(shop.id) as uow:
        assert await uow.credentials.get() is None
        dropped = await uow.session.scalar(
            text("SELECT count(*) FROM audit_log WHERE action = 'token.rejected'")
        )
    assert dropped == 1, "on record for whoever looks into the shop"
    async with client(create_app(container)) as http:
        exchanged = await http.post(
            "/auth/token-exchange",
            headers={"Authorization": f"Bearer {_session_token(shop.domain)}"},
        )
    assert exchanged.json()["exchanged"] is True
    assert (await container.shopify_admin.shop_info(ref)).name.startswith("Fake")


async def test_a_refused_token_replaced_meanwhile_is_kept(shopify):
    fake, container = shopify
    shop = await install(fake, container)
    revoked = next(iter(fake.shops[shop.domain].access_tokens))
    fake.shops[shop.domain].access_tokens.clear()
    # A re-install stored a new token between our call and Shopify's 401.
    await container.install_shop()(
        shop.domain,
        await container.shopify_auth.exchange_code(shop.domain, fake.issue_code(shop.domain)),
        source="test",
    )

    await container.shopify_tokens.forget(shop.id, revoked)

    async with container.uow.for_shop(shop.id) as uow:
        kept = await uow.credentials.get()
    assert kept is not None and kept.access_token != revoked
