"""`/api/v1/messages` and `/api/v1/shop/settings`: what a merchant sees and changes."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client import REGISTRY

from application.contacts.record_consent import ConsentChange, RecordConsent
from application.messaging.queue_messages import OutgoingMessage
from domain.consent import ConsentSource, ConsentState
from domain.messages import MessageCategory
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.integration.test_message_callbacks import INBOUND, _with_number
from tests.integration.test_session_and_proxy import _token
from tests.support.http import client
from tests.support.messaging import add_contacts, fake_mitto_container, fund, set_messaging
from tests.support.queue import drain

pytestmark = pytest.mark.usefixtures("clean_db")


def _auth(shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(shop.domain)}"}


async def _queue(container, shop, contact, category=MessageCategory.TRANSACTIONAL):
    request = OutgoingMessage(
        text="Your order has shipped",
        category=category,
        source=f"automation:{category}",
        idempotency_key=f"test:{uuid.uuid4()}",
        contact_id=contact.id,
    )
    async with container.uow.for_shop(shop.id) as uow:
        [queued] = await container.queue_messages()(uow, await uow.shops.get(shop.id), [request])
        await uow.commit()
    return queued.message_id


async def test_messages_list_filters_pages_and_shows_history(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        shop = await add_shop(container)
        await set_messaging(container, shop, transactional_bypass_quiet_hours=True)
        await fund(container, shop, 1000)
        [subscribed] = await add_contacts(container, shop, ["+14155550301"])
        [gone] = await add_contacts(
            container, shop, ["+14155550302"], state=ConsentState.UNSUBSCRIBED
        )
        sent = [await _queue(container, shop, subscribed) for _ in range(3)]
        blocked = await _queue(container, shop, gone, MessageCategory.MARKETING)
        await drain(container, "messages")

        async with client(create_app(container)) as http:
            page = await http.get("/api/v1/messages", headers=_auth(shop), params={"limit": 2})
            rest = await http.get(
                "/api/v1/messages",
                headers=_auth(shop),
                params={"limit": 2, "cursor": page.json()["next_cursor"]},
            )
            only_blocked = await http.get(
                "/api/v1/messages", headers=_auth(shop), params={"status": "blocked_consent"}
            )
            by_contact = await http.get(
                "/api/v1/messages", headers=_auth(shop), params={"contact_id": str(subscribed.id)}
            )
            one = await http.get(f"/api/v1/messages/{sent[0]}", headers=_auth(shop))
            bad_status = await http.get(
                "/api/v1/messages", headers=_auth(shop), params={"status": "nonsense"}
            )

        ids = [m["id"] for m in page.json()["items"] + rest.json()["items"]]
        assert sorted(ids) == sorted(str(i) for i in [*sent, blocked])
        assert [m["id"] for m in only_blocked.json()["items"]] == [str(blocked)]
        assert len(by_contact.json()["items"]) == 3
        body = one.json()
        assert body["status"] == "sent" and body["to"] == "+14155550301"
        assert [h["status"] for h in body["history"]] == ["queued", "sent"]
        assert bad_status.status_code == 400
        assert bad_status.headers["content-type"].startswith("application/problem+json")


async def test_a_marketing_text_skipped_by_smart_sending_is_listed_as_skipped(container):
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    [contact] = await add_contacts(container, shop, ["+14155550305"])
    # Whatever the hour: a first text deferred to the morning still holds back the second.
    await _queue(container, shop, contact, MessageCategory.MARKETING)
    skipped = await _queue(container, shop, contact, MessageCategory.MARKETING)

    async with client(create_app(container)) as http:
        listed = await http.get(
            "/api/v1/messages", headers=_auth(shop), params={"status": "skipped"}
        )
        one = await http.get(f"/api/v1/messages/{skipped}", headers=_auth(shop))

    assert [m["id"] for m in listed.json()["items"]] == [str(skipped)]
    assert [h["status"] for h in one.json()["history"]] == ["skipped"]


async def test_shop_a_cannot_list_or_read_shop_b_messages(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        shop_a, shop_b = await add_shop(container), await add_shop(container)
        await fund(container, shop_b, 1000)
        [contact_b] = await add_contacts(container, shop_b, ["+14155550303"])
        message_b = await _queue(container, shop_b, contact_b)
        async with client(create_app(container)) as http:
            listed = await http.get("/api/v1/messages", headers=_auth(shop_a))
            read = await http.get(f"/api/v1/messages/{message_b}", headers=_auth(shop_a))
            own = await http.get(f"/api/v1/messages/{message_b}", headers=_auth(shop_b))
        assert listed.json()["items"] == []
        assert (read.status_code, own.status_code) == (404, 200)


async def test_a_test_send_goes_out_and_is_rate_limited(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop = await add_shop(container)
        await fund(container, shop, 1000)
        await container.rate_limiter.reset(f"test-send:{shop.id}")
        async with client(create_app(container)) as http:
            answers = [
                await http.post(
                    "/api/v1/messages/test",
                    headers=_auth(shop),
                    json={"phone": "+1 415 555 0304", "text": "Hello from the test button"},
                )
                for _ in range(6)
            ]
            bad_phone = await http.post(
                "/api/v1/messages/test",
                headers=_auth(shop),
                json={"phone": "12", "text": "x"},
            )
        await drain(container, "messages")

        assert [a.status_code for a in answers] == [202] * 5 + [429]
        assert answers[-1].headers["retry-after"].isdigit()
        assert bad_phone.status_code in (400, 422)
        assert len(fake.accepted) == 5
        assert fake.accepted[0].text == "Hello from the test button"  # system texts go as written


@pytest.mark.parametrize("signed_up_again", [False, True])
async def test_a_test_send_to_a_number_that_texted_stop_is_refused(container, signed_up_again):
    # After an opt-out, the one confirmation text is the last (sms.md §3), whoever presses
    # the button: a test text carries whatever the merchant types, to any number. A sign-up
    # form submitted for the number since changes nothing until the phone replies.
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    [contact] = await add_contacts(
        container, shop, ["+14155550311"], state=ConsentState.UNSUBSCRIBED
    )
    if signed_up_again:
        async with container.uow.for_shop(shop.id) as uow:
            form = ConsentChange(
                contact.id, ConsentState.PENDING, ConsentSource.STOREFRONT_FORM, "shopper"
            )
            await RecordConsent(container.clock)(uow, form)
            await uow.commit()
    async with client(create_app(container)) as http:
        refused = await http.post(
            "/api/v1/messages/test",
            headers=_auth(shop),
            json={"phone": contact.phone, "text": "Big sale today!"},
        )
        listed = (await http.get("/api/v1/messages", headers=_auth(shop))).json()
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert listed["items"] == []


@pytest.mark.parametrize("footer", ["", "   "])
async def test_a_blank_footer_still_leaves_marketing_texts_an_opt_out(container, footer):
    # Every marketing text carries an opt-out (sms.md section 6): clearing the footer brings
    # back the default one rather than sending texts nobody can stop.
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    [contact] = await add_contacts(container, shop, ["+14155550312"])
    async with client(create_app(container)) as http:
        cleared = await http.patch(
            "/api/v1/shop/settings", headers=_auth(shop), json={"footer": footer}
        )
        message_id = await _queue(container, shop, contact, MessageCategory.MARKETING)
        sent = (await http.get(f"/api/v1/messages/{message_id}", headers=_auth(shop))).json()
    assert cleared.status_code == 200
    assert sent["text"].endswith("\nReply STOP to opt out"), sent["text"]
    assert cleared.json()["messaging"]["footer"] == "Reply STOP to opt out"


def _needs_review_count() -> float:
    labels = {"kind": "inbound", "outcome": "needs_review"}
    return REGISTRY.get_sample_value("blossom_sms_reports_total", labels) or 0


async def test_inbound_texts_that_talk_of_opting_out_are_flagged_for_review(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        number = "+15550003101"
        shop, other = await _with_number(container, number), await add_shop(container)
        texts = ["Don't stop the sale!", "Do you ship to Canada?", "please stop texting me", "STOP"]
        counted_before = _needs_review_count()
        async with client(create_app(container)) as http:
            for second, body in enumerate(texts):
                await http.post(
                    INBOUND,
                    json={
                        "from": "14155550310",
                        "to": number[1:],
                        "text": body,
                        "timestamp": f"2026-11-01T10:00:0{second}Z",
                    },
                )
            listing = "/api/v1/messages/inbound"
            first = await http.get(
                listing, headers=_auth(shop), params={"needs_review": "true", "limit": 1}
            )
            cursor = first.json()["next_cursor"]
            second_page = await http.get(
                listing,
                headers=_auth(shop),
                params={"needs_review": "true", "limit": 1, "cursor": cursor},
            )
            everything = await http.get(listing, headers=_auth(shop))
            elsewhere = await http.get(listing, headers=_auth(other))

    pages = [first.json(), second_page.json()]
    assert [i["text"] for page in pages for i in page["items"]] == [
        "please stop texting me",
        "Don't stop the sale!",
    ]
    assert pages[1]["next_cursor"] is None
    assert [(i["text"], i["keyword"], i["needs_review"]) for i in everything.json()["items"]] == [
        ("STOP", "opt_out", False),
        ("please stop texting me", "opt_out", True),
        ("Do you ship to Canada?", "none", False),
        ("Don't stop the sale!", "none", True),
    ]
    assert elsewhere.json()["items"] == []
    assert _needs_review_count() - counted_before == 2


async def test_settings_set_and_clear_the_support_email_and_refuse_a_malformed_one(container):
    shop = await add_shop(container)
    settings = "/api/v1/shop/settings"
    async with client(create_app(container)) as http:
        before = await http.get(settings, headers=_auth(shop))
        named = await http.patch(
            settings, headers=_auth(shop), json={"support_email": "care@blossom.example"}
        )
        malformed = [
            await http.patch(settings, headers=_auth(shop), json={"support_email": bad})
            for bad in (
                "not an address",
                "{shop}@x.example",
                "a@b",
                "care@blossom.example\u0000",  # Postgres cannot store it
                "care\u001b[2J@blossom.example",  # it would go out in every HELP reply
            )
        ]
        untouched = await http.patch(settings, headers=_auth(shop), json={"cap_count": 2})
        cleared = await http.patch(settings, headers=_auth(shop), json={"support_email": ""})

    assert before.json()["support_email"] is None
    assert named.json()["support_email"] == "care@blossom.example"
    assert [r.status_code for r in malformed] == [400] * 5
    assert untouched.json()["support_email"] == "care@blossom.example"
    assert cleared.json()["support_email"] is None


async def test_settings_change_quiet_hours_cap_and_sender_and_refuse_bad_values(container):
    shop, other = await add_shop(container), await add_shop(container)
    async with client(create_app(container)) as http:
        changed = await http.patch(
            "/api/v1/shop/settings",
            headers=_auth(shop),
            json={
                "quiet_hours": {"start": "20:00", "end": "09:00"},
                "cap_count": 2,
                "sender": "+1 555 000 3001".replace(" ", ""),
                "footer": "Text STOP to end",
            },
        )
        taken = await http.patch(
            "/api/v1/shop/settings", headers=_auth(other), json={"sender": "15550003001"}
        )
        loose = await http.patch(
            "/api/v1/shop/settings",
            headers=_auth(other),
            json={"quiet_hours": {"start": "23:00", "end": "07:00"}},
        )
        never = await http.patch(
            "/api/v1/shop/settings",
            headers=_auth(other),
            json={"quiet_hours": {"start": "07:00", "end": "05:00"}},
        )
        unknown_field = await http.patch(
            "/api/v1/shop/settings", headers=_auth(other), json={"quiet": True}
        )
        read = await http.get("/api/v1/shop/settings", headers=_auth(shop))

    assert changed.status_code == 200
    assert read.json()["quiet_hours"] == {"start": "20:00", "end": "09:00"}
    assert read.json()["messaging"]["cap_count"] == 2
    assert read.json()["messaging"]["sender"] == "+15550003001"
    assert taken.status_code == 409, "one number, one shop: replies must route to one shop"
    assert loose.status_code == 200, "looser hours are stored; the legal window still applies"
    assert never.status_code == 422
    assert unknown_field.status_code == 400


async def test_smart_sending_is_24_hours_until_the_shop_changes_it_within_a_week(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        default = await http.get("/api/v1/shop/settings", headers=_auth(shop))
        off = await http.patch(
            "/api/v1/shop/settings", headers=_auth(shop), json={"smart_sending_hours": 0}
        )
        refused = [
            await http.patch(
                "/api/v1/shop/settings", headers=_auth(shop), json={"smart_sending_hours": hours}
            )
            for hours in (-1, 169)
        ]
        read = await http.get("/api/v1/shop/settings", headers=_auth(shop))
        schema = (await http.get("/schema/openapi.json")).json()

    assert default.json()["messaging"]["smart_sending_hours"] == 24
    assert default.json()["messaging"]["transactional_bypass_quiet_hours"] is False
    assert off.status_code == 200 and read.json()["messaging"]["smart_sending_hours"] == 0
    assert [r.status_code for r in refused] == [400, 400]
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in refused)
    field = schema["components"]["schemas"]["MessagingSettings"]["properties"]
    assert '"maximum": 168' in json.dumps(field["smart_sending_hours"])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("PATCH", "/api/v1/shop/settings", {"json": {"footer": "Reply\u0000STOP"}}, 400),
        ("PATCH", "/api/v1/shop/settings", {"json": {"help_text": "\u0000"}}, 400),
        ("PATCH", "/api/v1/shop/settings", {"json": {"opt_out_words": ["end\u0000"]}}, 400),
        # Other control characters would reach phones in every reply.
        ("PATCH", "/api/v1/shop/settings", {"json": {"footer": "Reply STOP\u0007"}}, 400),
        ("PATCH", "/api/v1/shop/settings", {"json": {"help_text": "\u001b[2J Help"}}, 400),
        ("PATCH", "/api/v1/shop/settings", {"json": {"opt_out_words": ["e\u0008nd"]}}, 400),
        # A line break is fine: GSM-7 has it.
        ("PATCH", "/api/v1/shop/settings", {"json": {"help_text": "Help:\nReply STOP"}}, 200),
        ("GET", "/api/v1/contacts", {"params": {"tag": "vip\x00"}}, 422),
        ("GET", "/api/v1/messages", {"params": {"source": "campaign\x00"}}, 400),
    ],
)
async def test_control_characters_in_settings_or_filters_are_a_problem_not_a_500(
    container, method, path, kwargs, status
):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        response = await http.request(method, path, headers=_auth(shop), **kwargs)
    assert response.status_code == status, response.text
    if status != 200:
        assert response.headers["content-type"].startswith("application/problem+json")
