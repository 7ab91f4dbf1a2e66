"""Self-tests of the fake Shopify server through real HTTP (no database)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest

from infrastructure.shopify.fake_server import (
    UNAUTHORIZED_MESSAGE,
    FakeShopify,
    deliver_many,
    send_webhook,
)

API_KEY = "client-id-123"
SECRET = "hush"
SHOP = "sms-demo.myshopify.com"
VERSION = "2026-07"
# The §2 vector: sms-demo, aud client-id-123, nbf 1717000000, exp 1717000060, secret hush.
SESSION_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL3Ntcy1kZW1vLm15c2hvcGlmeS5jb20vYWRt"
    "aW4iLCJkZXN0IjoiaHR0cHM6Ly9zbXMtZGVtby5teXNob3BpZnkuY29tIiwiYXVkIjoiY2xpZW50LWlkLTEyMyIsInN1Y"
    "iI6IjQyIiwiZXhwIjoxNzE3MDAwMDYwLCJuYmYiOjE3MTcwMDAwMDAsImlhdCI6MTcxNzAwMDAwMCwianRpIjoiZjg5MT"
    "IxMjktMWFmNi00Y2FkLTljYTMtNzZiMGY3NjIxMDg3Iiwic2lkIjoiYWFlYTE4MmYyNzMyZDQ0YzIzMDU3YzBmZWE1ODQ"
    "wMjFhNDQ4NWIyYmQyNWQzZWI3ZmQzNDkzMTNhZDI0YzY4NSJ9.AVkjRNgGOOdMxEn2SG1ZDnii3bqv6YO4wjIVM0V5e94"
)
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"
SHOP_QUERY = "query { shop { id name myshopifyDomain currencyCode ianaTimezone } }"
SUBSCRIBE = (
    "mutation webhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, "
    "$webhookSubscription: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, "
    "webhookSubscription: $webhookSubscription) { webhookSubscription { id topic uri } "
    "userErrors { field message } } }"
)
CONSENT = (
    "mutation customerSmsMarketingConsentUpdate($input: CustomerSmsMarketingConsentUpdateInput!) "
    "{ customerSmsMarketingConsentUpdate(input: $input) { customer { id } userErrors { code } } }"
)


class FakeClock:
    def __init__(self, now: float = 1_717_000_030.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake(clock):
    async with FakeShopify(API_KEY, SECRET, clock=clock) as server:
        server.add_shop(
            SHOP, name="SMS Demo", currency="EUR", timezone="Europe/Paris", country="FR"
        )
        yield server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def token_url(fake: FakeShopify, shop: str = SHOP) -> str:
    return fake.api_base.format(shop=shop) + "/admin/oauth/access_token"


def graphql_url(fake: FakeShopify, shop: str = SHOP, version: str = VERSION) -> str:
    return fake.api_base.format(shop=shop) + f"/admin/api/{version}/graphql.json"


async def request_token(client, fake, shop: str = SHOP, **fields) -> httpx.Response:
    body = {"client_id": API_KEY, "client_secret": SECRET, **fields}
    return await client.post(token_url(fake, shop), json=body)


async def graphql(client, fake, token, query=SHOP_QUERY, variables=None, shop=SHOP):
    return await client.post(
        graphql_url(fake, shop),
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token},
    )


async def expiring_pair(client, fake) -> dict:
    response = await request_token(client, fake, code=fake.issue_code(SHOP), expiring="1")
    assert response.status_code == 200
    return response.json()


def session_token(claims: dict, secret: str = SECRET) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signed = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    digest = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


VALID_CLAIMS = {
    "iss": f"https://{SHOP}/admin",
    "dest": f"https://{SHOP}",
    "aud": API_KEY,
    "sub": "42",
    "exp": 1_717_000_060,
    "nbf": 1_717_000_000,
}


async def test_code_grant_without_expiring_returns_a_permanent_token(fake, client):
    response = await request_token(client, fake, code=fake.issue_code(SHOP))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "scope"}
    assert body["scope"] == fake.granted_scopes
    assert fake.shops[SHOP].access_tokens[body["access_token"]] is None


async def test_form_encoded_code_grant_with_expiring_returns_a_refreshable_pair(fake, client):
    form = {"client_id": API_KEY, "client_secret": SECRET, "code": fake.issue_code(SHOP)}
    response = await client.post(token_url(fake), data={**form, "expiring": "1"})

    body = response.json()
    assert response.status_code == 200
    assert body["expires_in"] == 3600
    assert body["refresh_token_expires_in"] == 90 * 86400
    assert body["refresh_token"] == fake.shops[SHOP].refresh_token


async def test_a_code_works_once(fake, client):
    code = fake.issue_code(SHOP)
    assert (await request_token(client, fake, code=code)).status_code == 200

    reused = await request_token(client, fake, code=code)

    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_request"


async def test_wrong_client_secret_is_401(fake, client):
    body = {"client_id": API_KEY, "client_secret": "nope", "code": fake.issue_code(SHOP)}
    response = await client.post(token_url(fake), json=body)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_refresh_rotates_and_the_old_token_recovers_only_until_the_new_one_is_used(
    fake, client
):
    first = await expiring_pair(client, fake)
    refresh = {"grant_type": "refresh_token"}

    second = await request_token(client, fake, **refresh, refresh_token=first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    # The reply was "lost": the old refresh token may be retried while the new pair is unused.
    retried = await request_token(client, fake, **refresh, refresh_token=first["refresh_token"])
    assert retried.status_code == 200
    assert (await graphql(client, fake, retried.json()["access_token"])).status_code == 200

    too_late = await request_token(client, fake, **refresh, refresh_token=first["refresh_token"])
    assert too_late.status_code == 400
    assert too_late.json()["error"] == "invalid_grant"
    assert fake.refresh_count[SHOP] == 2


async def test_an_expired_access_token_is_refused(fake, client):
    pair = await expiring_pair(client, fake)
    fake.expire_access_token(SHOP)

    response = await graphql(client, fake, pair["access_token"])

    assert response.status_code == 401


async def test_token_exchange_with_the_contract_vector_creates_the_shop(clock, client):
    async with FakeShopify(API_KEY, SECRET, clock=clock) as fake:
        response = await request_token(
            client,
            fake,
            grant_type=EXCHANGE,
            subject_token=SESSION_TOKEN,
            subject_token_type="urn:ietf:params:oauth:token-type:id_token",
            requested_token_type=OFFLINE,
            expiring="1",
        )

        assert response.status_code == 200
        assert "refresh_token" in response.json()
        assert fake.shops[SHOP].name == "sms-demo"
        assert fake.token_exchanges[SHOP] == 1
        assert (await graphql(client, fake, response.json()["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("token", "now", "accepted"),
    [
        (SESSION_TOKEN, 1_717_000_000 - 10, True),
        (SESSION_TOKEN, 1_717_000_000 - 10.001, False),
        (SESSION_TOKEN, 1_717_000_060 + 9.999, True),
        (SESSION_TOKEN, 1_717_000_060 + 10, False),
        (session_token(VALID_CLAIMS, secret="not-hush"), 1_717_000_030, False),
        (session_token({**VALID_CLAIMS, "aud": "evil"}), 1_717_000_030, False),
        (
            session_token({**VALID_CLAIMS, "dest": "https://other.myshopify.com"}),
            1_717_000_030,
            False,
        ),
        ("not.a.jwt", 1_717_000_030, False),
    ],
)
async def test_session_token_validation(fake, client, clock, token, now, accepted):
    clock.now = now
    response = await request_token(
        client,
        fake,
        grant_type=EXCHANGE,
        subject_token=token,
        subject_token_type="urn:ietf:params:oauth:token-type:id_token",
        requested_token_type=OFFLINE,
    )

    if accepted:
        assert set(response.json()) == {"access_token", "scope"}
    else:
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_subject_token"


async def test_legacy_token_migrates_one_way_to_an_expiring_pair(fake, client):
    legacy = fake.issue_legacy_token(SHOP)
    migrate = {
        "grant_type": EXCHANGE,
        "subject_token": legacy,
        "subject_token_type": OFFLINE,
        "requested_token_type": OFFLINE,
        "expiring": "1",
    }

    response = await request_token(client, fake, **migrate)

    assert response.status_code == 200
    assert "refresh_token" in response.json()
    assert (await graphql(client, fake, legacy)).status_code == 401
    assert (await graphql(client, fake, response.json()["access_token"])).status_code == 200
    assert (await request_token(client, fake, **migrate)).status_code == 400


async def test_graphql_refuses_an_unknown_token_and_an_unknown_version(fake, client):
    refused = await graphql(client, fake, "shpat_wrong")
    token = fake.issue_legacy_token(SHOP)
    wrong_version = await client.post(
        graphql_url(fake, version="2020-01"),
        json={"query": SHOP_QUERY},
        headers={"X-Shopify-Access-Token": token},
    )

    assert refused.status_code == 401
    assert refused.json() == {"errors": UNAUTHORIZED_MESSAGE}
    assert wrong_version.status_code == 404


async def test_shop_query_returns_the_shop_and_its_cost(fake, client):
    response = await graphql(client, fake, fake.issue_legacy_token(SHOP))

    body = response.json()
    assert body["data"]["shop"] == {
        "id": "gid://shopify/Shop/1",
        "name": "SMS Demo",
        "myshopifyDomain": SHOP,
        "currencyCode": "EUR",
        "ianaTimezone": "Europe/Paris",
        "billingAddress": {"countryCodeV2": "FR"},
        "plan": {"displayName": "Basic"},
    }
    status = body["extensions"]["cost"]["throttleStatus"]
    assert status == {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 1999.0,
        "restoreRate": 100.0,
    }
    assert fake.graphql_calls[SHOP] == 1


async def test_webhook_subscription_is_recorded_and_a_duplicate_is_taken(fake, client):
    token = fake.issue_legacy_token(SHOP)
    variables = {"topic": "ORDERS_CREATE", "webhookSubscription": {"uri": "https://app/webhooks"}}

    created = (await graphql(client, fake, token, SUBSCRIBE, variables)).json()
    duplicate = (await graphql(client, fake, token, SUBSCRIBE, variables)).json()

    payload = created["data"]["webhookSubscriptionCreate"]
    assert payload["webhookSubscription"]["topic"] == "ORDERS_CREATE"
    assert payload["userErrors"] == []
    assert fake.shops[SHOP].webhook_subscriptions == [
        {"topic": "ORDERS_CREATE", "uri": "https://app/webhooks"}
    ]
    assert duplicate["data"]["webhookSubscriptionCreate"]["userErrors"] == [
        {
            "field": ["webhookSubscription", "callbackUrl"],
            "message": "Address for this topic has already been taken",
            "code": "TAKEN",
        }
    ]


async def test_redacted_consent_is_refused_and_not_recorded(fake, client):
    token = fake.issue_legacy_token(SHOP)
    update = {"customerId": "gid://shopify/Customer/1", "smsMarketingConsent": {}}

    redacted = {"input": {**update, "smsMarketingConsent": {"marketingState": "REDACTED"}}}
    refused = (await graphql(client, fake, token, CONSENT, redacted)).json()
    subscribed = {"input": {**update, "smsMarketingConsent": {"marketingState": "SUBSCRIBED"}}}
    accepted = (await graphql(client, fake, token, CONSENT, subscribed)).json()

    assert (
        refused["data"]["customerSmsMarketingConsentUpdate"]["userErrors"][0]["code"] == "INVALID"
    )
    assert accepted["data"]["customerSmsMarketingConsentUpdate"]["userErrors"] == []
    assert fake.shops[SHOP].consent_updates == [subscribed["input"]]


async def test_throttled_when_the_bucket_is_drained_until_it_restores(clock, client):
    async with FakeShopify(API_KEY, SECRET, clock=clock, bucket_size=25, restore_rate=5) as fake:
        token = fake.issue_legacy_token(SHOP)
        variables = {
            "input": {
                "customerId": "gid://shopify/Customer/1",
                "smsMarketingConsent": {"marketingState": "SUBSCRIBED"},
            }
        }
        for _ in range(2):
            assert "data" in (await graphql(client, fake, token, CONSENT, variables)).json()

        throttled = await graphql(client, fake, token, CONSENT, variables)
        clock.now += 1.0  # 5 points restored: 5 + 5 = 10 available
        restored = await graphql(client, fake, token, CONSENT, variables)

    body = throttled.json()
    assert throttled.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 5
    assert "data" in restored.json()
    assert fake.currently_available(SHOP) == 0
    assert fake.throttled_count[SHOP] == 1


async def test_fail_next_answers_429_with_retry_after_then_recovers(fake, client):
    token = fake.issue_legacy_token(SHOP)
    fake.fail_next(429, retry_after=1)

    failed = await graphql(client, fake, token)
    succeeded = await graphql(client, fake, token)

    assert failed.status_code == 429
    assert failed.headers["Retry-After"] == "1"
    assert succeeded.status_code == 200
    assert [entry["status"] for entry in fake.requests] == [429, 200]


async def test_delay_next_makes_a_client_time_out(fake, client):
    token = fake.issue_legacy_token(SHOP)
    fake.delay_next(2.0)

    with pytest.raises(httpx.ReadTimeout):
        await client.post(
            graphql_url(fake),
            json={"query": SHOP_QUERY},
            headers={"X-Shopify-Access-Token": token},
            timeout=httpx.Timeout(0.2, connect=5.0),
        )


async def test_send_webhook_signs_the_exact_body_with_all_headers():
    seen: list[httpx.Request] = []

    async def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    raw = (
        b'{"id":820982911946154508,"email":"jon@example.com","phone":"+16135551212",'
        b'"total_price":"404.95"}'
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as http:
        await send_webhook(
            http,
            "http://app/webhooks",
            topic="orders/create",
            shop=SHOP,
            payload=raw,
            secret=SECRET,
            event_id="e1",
        )
        await send_webhook(
            http,
            "http://app/webhooks",
            topic="orders/create",
            shop=SHOP,
            payload={"id": 1, "note": "é"},
            secret=SECRET,
        )

    vector, mapped = seen
    assert vector.headers["X-Shopify-Hmac-Sha256"] == "ngUJbV12dtmnXeqJuKRiu7FHFWayfobXqlJKTJqEmzY="
    assert vector.headers["X-Shopify-Event-Id"] == "e1"
    assert mapped.content == '{"id":1,"note":"é"}'.encode()
    expected = hmac.new(SECRET.encode(), mapped.content, hashlib.sha256).digest()
    assert base64.b64decode(mapped.headers["X-Shopify-Hmac-Sha256"]) == expected
    for header in ("Topic", "Shop-Domain", "API-Version", "Webhook-Id", "Triggered-At"):
        assert mapped.headers[f"X-Shopify-{header}"]


async def test_deliver_many_repeats_deliveries_with_the_same_webhook_id():
    seen: list[str] = []

    async def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-Shopify-Webhook-Id"])
        return httpx.Response(200)

    deliveries = [
        {"topic": "orders/create", "shop": SHOP, "payload": {"id": n}, "secret": SECRET}
        for n in range(10)
    ]
    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as http:
        responses = await deliver_many(
            http, "http://app/webhooks", deliveries, duplicate_ratio=0.3, shuffle=True, seed=7
        )

    assert len(responses) == len(seen) == 13
    assert len(set(seen)) == 10
