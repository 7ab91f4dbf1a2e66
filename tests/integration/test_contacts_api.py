"""The admin contacts API, scoped by the session token's shop."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from application.contacts.record_consent import ConsentChange, RecordConsent
from domain.consent import ConsentSource, ConsentState
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.integration.test_session_and_proxy import _token
from tests.support.http import client
from tests.support.messaging import REFUSED_AT, refuse_number

pytestmark = pytest.mark.usefixtures("clean_db")


def _auth(shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(shop.domain)}"}


async def test_create_search_get_tag_and_page_through_contacts(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        created = [
            (
                await http.post(
                    "/api/v1/contacts",
                    headers=_auth(shop),
                    json={
                        "phone": f"(415) 555-01{n:02d}",
                        "email": f"p{n}@example.com",
                        "tags": ["VIP"],
                    },
                )
            ).json()
            for n in range(5)
        ]
        found = (
            await http.get(
                "/api/v1/contacts/search", headers=_auth(shop), params={"phone": "+1 415 555 0103"}
            )
        ).json()
        by_email = (
            await http.get(
                "/api/v1/contacts/search", headers=_auth(shop), params={"email": "P2@Example.com"}
            )
        ).json()
        tagged = (
            await http.patch(
                f"/api/v1/contacts/{created[0]['id']}/tags",
                headers=_auth(shop),
                json={"add": ["Spring"], "remove": ["vip"]},
            )
        ).json()
        first = (
            await http.get("/api/v1/contacts", headers=_auth(shop), params={"limit": 2})
        ).json()
        rest = (
            await http.get(
                "/api/v1/contacts",
                headers=_auth(shop),
                params={"limit": 10, "cursor": first["next_cursor"]},
            )
        ).json()
        vip = (
            await http.get("/api/v1/contacts", headers=_auth(shop), params={"tag": "vip"})
        ).json()
    assert created[0]["phone"] == "+14155550100" and created[0]["consent_state"] == "unknown"
    assert [c["id"] for c in found] == [created[3]["id"]]
    assert [c["id"] for c in by_email] == [created[2]["id"]]
    assert tagged["tags"] == ["spring"]
    ids = [c["id"] for c in first["items"] + rest["items"]]
    assert sorted(ids) == sorted(c["id"] for c in created) and len(set(ids)) == 5
    assert rest["next_cursor"] is None
    assert len(vip["items"]) == 4


async def test_a_contact_shows_whether_the_provider_refused_its_number(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        created = (
            await http.post("/api/v1/contacts", headers=_auth(shop), json={"phone": "+14155550100"})
        ).json()
        await refuse_number(container, shop, uuid.UUID(created["id"]), created["phone"])
        read = (await http.get(f"/api/v1/contacts/{created['id']}", headers=_auth(shop))).json()
        [listed] = (await http.get("/api/v1/contacts", headers=_auth(shop))).json()["items"]
    assert (created["phone_invalid"], created["phone_invalid_at"]) == (False, None)
    assert read["phone_invalid"] is listed["phone_invalid"] is True
    assert datetime.fromisoformat(read["phone_invalid_at"]) == REFUSED_AT


async def test_bad_input_is_a_problem_and_duplicates_conflict(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        bad_phone = await http.post(
            "/api/v1/contacts", headers=_auth(shop), json={"phone": "12345"}
        )
        unknown_field = await http.post(
            "/api/v1/contacts", headers=_auth(shop), json={"phone": "+14155550100", "shop_id": "x"}
        )
        ok = await http.post(
            "/api/v1/contacts", headers=_auth(shop), json={"phone": "+14155550100"}
        )
        duplicate = await http.post(
            "/api/v1/contacts", headers=_auth(shop), json={"phone": "(415) 555-0100"}
        )
        bad_cursor = await http.get(
            "/api/v1/contacts", headers=_auth(shop), params={"cursor": "!!"}
        )
    assert bad_phone.status_code == 422 and "phone" in bad_phone.json()["detail"]
    assert unknown_field.status_code == 400
    assert ok.status_code == 201 and duplicate.status_code == 409
    assert bad_cursor.status_code == 400
    for response in (bad_phone, unknown_field, duplicate, bad_cursor):
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_zone_the_merchant_gives_outranks_the_numbers_and_must_be_real(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:

        async def create(**fields):
            return await http.post("/api/v1/contacts", headers=_auth(shop), json=fields)

        in_perth = await create(phone="+61412345678", timezone="Australia/Perth")
        anywhere = await create(phone="+61412345679")
        on_mars = await create(phone="+61412345670", timezone="Mars/Olympus_Mons")
    assert (in_perth.json()["timezone"], in_perth.json()["timezones"]) == (
        "Australia/Perth",
        ["Australia/Perth"],
    )
    assert anywhere.json()["timezone"] is None and len(anywhere.json()["timezones"]) == 8
    assert on_mars.status_code == 422 and "timezone" in on_mars.json()["detail"]


@pytest.mark.parametrize(
    "email", ["jane\u0000@example.com", "jane@exa\u001bmple.com", "jane\u200b@example.com"]
)
async def test_an_email_with_control_or_invisible_characters_is_refused(container, email):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        response = await http.post(
            "/api/v1/contacts", headers=_auth(shop), json={"phone": "+14155550132", "email": email}
        )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "email: not an e-mail address"


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("first_name", "Jane\u0000"),
        ("first_name", "\u001b[2J\u001b[31mJane"),
        ("last_name", "Doe\nSTOP"),
        ("last_name", "Doe\u2028Smith"),
    ],
)
async def test_a_name_with_control_characters_or_line_breaks_is_refused(container, field, name):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        refused = await http.post(
            "/api/v1/contacts", headers=_auth(shop), json={"phone": "+14155550132", field: name}
        )
        persian = await http.post(
            "/api/v1/contacts",
            headers=_auth(shop),
            json={"phone": "+14155550133", field: "\u0645\u06cc\u200c\u0631\u0636\u0627"},
        )
        listed = (await http.get("/api/v1/contacts", headers=_auth(shop))).json()
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith(f"{field}: ")
    assert persian.status_code == 201, "a zero-width non-joiner is part of a Persian name"
    assert [c["phone"] for c in listed["items"]] == ["+14155550133"]


@pytest.mark.parametrize("path", ["/api/v1/contacts", "/api/v1/messages"])
@pytest.mark.parametrize(
    "params",
    [
        {"created_from": "2026-11-01T00:00:00"},  # no zone
        {"created_to": "0001-01-01T00:00:00+05:00"},  # before the first UTC instant
        {"cursor": "MjAyNi0xMS0wMVQwMDowMDowMHwwZDdmMGE1Mi01YjhlLTRhOGUtOWQzYy03ZjRjMmYxZTlhMTA"},
    ],
)
async def test_list_filters_and_cursors_without_a_usable_time_are_400(container, path, params):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        response = await http.get(path, headers=_auth(shop), params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_consent_history_shows_events_and_a_valid_chain(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        contact = (
            await http.post("/api/v1/contacts", headers=_auth(shop), json={"phone": "+14155550100"})
        ).json()
    async with container.uow.for_shop(shop.id) as uow:
        for state in (ConsentState.SUBSCRIBED, ConsentState.UNSUBSCRIBED):
            await RecordConsent(container.clock)(
                uow,
                ConsentChange(
                    contact_id=contact["id"],
                    new_state=state,
                    source=ConsentSource.KEYWORD,
                    actor="sms",
                    wording="Reply STOP to opt out",
                ),
            )
        await uow.commit()
    async with client(create_app(container)) as http:
        history = (
            await http.get(f"/api/v1/contacts/{contact['id']}/consent", headers=_auth(shop))
        ).json()
    assert [e["new_state"] for e in history["events"]] == ["subscribed", "unsubscribed"]
    assert history["chain_valid"] is True


async def test_shop_a_token_cannot_list_read_or_tag_shop_b_contacts(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    async with client(create_app(container)) as http:
        b_contact = (
            await http.post(
                "/api/v1/contacts", headers=_auth(shop_b), json={"phone": "+14155550100"}
            )
        ).json()
        listed = (await http.get("/api/v1/contacts", headers=_auth(shop_a))).json()
        read = await http.get(f"/api/v1/contacts/{b_contact['id']}", headers=_auth(shop_a))
        tag = await http.patch(
            f"/api/v1/contacts/{b_contact['id']}/tags", headers=_auth(shop_a), json={"add": ["x"]}
        )
        history = await http.get(
            f"/api/v1/contacts/{b_contact['id']}/consent", headers=_auth(shop_a)
        )
        search = (
            await http.get(
                "/api/v1/contacts/search", headers=_auth(shop_a), params={"phone": "+14155550100"}
            )
        ).json()
    assert listed["items"] == [] and search == []
    assert read.status_code == 404 and tag.status_code == 404 and history.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b'{"phone": "+14155550100", "first_name": "\xff\xfe"}',  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON decoder goes
    ],
    ids=["invalid-utf8", "deeply-nested"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/contacts"),
        ("PATCH", "/api/v1/shop/settings"),
        ("POST", "/api/v1/estimates"),
    ],
)
async def test_a_json_body_that_cannot_be_decoded_is_a_400_problem(container, body, method, path):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        response = await http.request(
            method,
            path,
            content=body,
            headers={**_auth(shop), "content-type": "application/json"},
        )
        listed = (await http.get("/api/v1/contacts", headers=_auth(shop))).json()
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"].startswith("JSON is malformed")
    assert listed["items"] == []
