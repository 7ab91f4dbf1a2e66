"""GDPR rights end to end: compliance webhooks -> requests -> export, erasure, purge."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import timedelta

import pytest
from procrastinate.exceptions import AlreadyEnqueued
from prometheus_client import REGISTRY
from sqlalchemy import text

from application.contacts import import_contacts
from application.gdpr.export_customer_data import ExportCustomerData
from application.gdpr.redact_customer import RedactCustomer
from application.messaging.index_message_phones import IndexMessagePhones
from application.messaging.queue_messages import OutgoingMessage
from application.messaging.receive_inbound_text import InboundTextIn
from domain.consent import ConsentState, verify_chain
from domain.events import COMPLIANCE_TOPICS, EventStatus
from domain.gdpr import GdprRequest, RequestKind, RequestSource, RequestStatus, Subject
from domain.messages import MessageCategory
from domain.shops import ShopCredentials
from infrastructure.db.engine import create_owner_engine
from infrastructure.shopify.fake_server import send_webhook
from infrastructure.telemetry.metrics import GDPR_REQUESTS_OVERDUE
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.integration.test_contact_import import _importer_acting_at, _start
from tests.integration.test_session_and_proxy import _token
from tests.support.http import client
from tests.support.messaging import REFUSED_AT, fund, refuse_number, set_messaging
from tests.support.queue import drain
from tests.support.races import racing_shop_read

pytestmark = pytest.mark.usefixtures("clean_db")

ADA = {
    "id": 501,
    "phone": "+14155550101",
    "email": "ada.lovelace@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "updated_at": "2026-11-20T10:00:00Z",
}
BOB = {
    "id": 502,
    "phone": "+14155550102",
    "email": "bob.babbage@example.com",
    "first_name": "Bob",
    "last_name": "Babbage",
    "updated_at": "2026-11-20T10:00:00Z",
}
# Every form Ada's personal data could take in plaintext.
ADA_NEEDLES = ("4155550101", "555-0101", "ada.lovelace@example.com", "Lovelace")


async def _deliver(container, shop, topic: str, payload: dict) -> None:
    if topic in COMPLIANCE_TOPICS:  # as Shopify does, the body names the shop
        payload = {"shop_domain": shop.domain, **payload}
    async with client(create_app(container)) as http:
        response = await send_webhook(
            http,
            "/webhooks/shopify",
            topic=topic,
            shop=shop.domain,
            payload=payload,
            secret=container.settings.shopify_api_secret,
        )
    assert response.status_code == 200
    await drain(container, "webhooks")


async def _customers(container, shop, *customers: dict) -> None:
    for customer in customers:
        await _deliver(container, shop, "customers/create", customer)
        await _deliver(
            container,
            shop,
            "checkouts/create",
            {
                "token": f"c-{customer['id']}",
                "phone": customer["phone"],
                "email": customer["email"],
                "buyer_accepts_sms_marketing": True,
                "customer": {"id": customer["id"]},
                "updated_at": "2026-11-21T10:00:00Z",
            },
        )


def _compliance(customer: dict, **extra) -> dict:
    return {
        "shop_id": 954889,
        "customer": {k: customer[k] for k in ("id", "email", "phone")},
        **extra,
    }


def _auth(shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(shop.domain)}"}


async def _api(container, method: str, url: str, shop, **kwargs):
    async with client(create_app(container)) as http:
        return await http.request(method, url, headers=_auth(shop), **kwargs)


async def _plaintext_hits(database_url: str, needles: tuple[str, ...]) -> list[str]:
    """Every text, varchar, array and json(b) column of every public table, searched as
    the owner (past RLS) for each needle."""
    engine = create_owner_engine(database_url)
    hits = []
    try:
        async with engine.connect() as conn:
            columns = (
                await conn.execute(
                    text(
                        "SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND data_type IN "
                        "('text', 'character varying', 'jsonb', 'json', 'ARRAY')"
                    )
                )
            ).all()
            for table, column in columns:
                for needle in needles:
                    found = await conn.scalar(
                        text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :p'),
                        {"p": f"%{needle}%"},
                    )
                    if found:
                        hits.append(f"{table}.{column} has {needle}")
    finally:
        await engine.dispose()
    return hits


async def _rows_of_shop(database_url: str, shop_id: uuid.UUID) -> dict[str, int]:
    engine = create_owner_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = (
                await conn.scalars(
                    text(
                        "SELECT table_name FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND column_name = 'shop_id'"
                    )
                )
            ).all()
            counts = {
                table: await conn.scalar(
                    text(f'SELECT count(*) FROM "{table}" WHERE shop_id = :shop'),
                    {"shop": shop_id},
                )
                for table in tables
            }
            counts["shops"] = await conn.scalar(
                text("SELECT count(*) FROM shops WHERE id = :shop"), {"shop": shop_id}
            )
    finally:
        await engine.dispose()
    return {table: n for table, n in counts.items() if n}


async def test_data_request_webhook_yields_a_bundle_of_that_customer_only(container):
    shop = await add_shop(container)
    await _customers(container, shop, ADA, BOB)

    await _deliver(
        container,
        shop,
        "customers/data_request",
        _compliance(ADA, orders_requested=[7001], data_request={"id": 9999}),
    )

    listed = await _api(container, "GET", "/api/v1/gdpr/requests", shop)
    [request] = listed.json()["items"]
    assert listed.status_code == 200 and listed.json()["next_cursor"] is None
    assert (request["kind"], request["status"], request["source"]) == (
        "data_request",
        "fulfilled",
        "shopify",
    )
    assert request["shopify_request_id"] == "9999" and request["downloadable"] is True
    assert request["subject"]["orders"] == [7001]

    download = await _api(container, "GET", f"/api/v1/gdpr/requests/{request['id']}/download", shop)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/json")
    assert download.headers["cache-control"] == "no-store"
    assert download.headers["content-disposition"].startswith("attachment;")
    bundle = download.json()
    [contact] = bundle["contacts"]
    assert (contact["phone"], contact["email"], contact["last_name"]) == (
        ADA["phone"],
        ADA["email"],
        "Lovelace",
    )
    assert contact["consent_state"] == "subscribed"
    assert [e["new_state"] for e in bundle["consent_events"]] == ["subscribed"]
    assert bundle["shop"] == shop.domain and bundle["request"]["id"] == request["id"]
    assert bundle["messages"] == bundle["inbound_messages"] == [], "she has no texts"
    assert bundle["back_in_stock_requests"] == bundle["clicks"] == bundle["orders"] == []
    assert "Babbage" not in download.text and "0102" not in download.text, "no one else's data"

    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic="customers/data_request", limit=5)
        actions = (
            await uow.session.execute(text("SELECT action, details::text FROM audit_log"))
        ).all()
    assert event.status is EventStatus.PROCESSED
    assert {a for a, _ in actions} >= {
        "gdpr.request.received",
        "gdpr.request.fulfilled",
        "gdpr.bundle.downloaded",
    }
    assert not [d for _, d in actions if "0101" in d or "lovelace" in d.lower()]


async def test_a_request_is_due_thirty_days_after_it_arrived(container):
    shop = await add_shop(container)
    await _deliver(container, shop, "customers/data_request", _compliance(ADA))
    async with container.uow.for_shop(shop.id) as uow:
        [request] = await uow.gdpr.page(limit=5)
    assert request.due_at - request.received_at == timedelta(days=30)


async def test_merchant_starts_a_data_request_and_gets_the_export_at_once(container):
    shop = await add_shop(container)
    await _customers(container, shop, ADA, BOB)

    created = await _api(
        container, "POST", "/api/v1/gdpr/requests", shop, json={"email": "ADA.Lovelace@example.com"}
    )
    assert created.status_code == 201
    assert (created.json()["source"], created.json()["status"]) == ("merchant", "fulfilled")
    assert created.json()["downloadable"] is True
    download = await _api(
        container, "GET", f"/api/v1/gdpr/requests/{created.json()['id']}/download", shop
    )
    assert [c["phone"] for c in download.json()["contacts"]] == [ADA["phone"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"phone": "12"}, 422),
        ({"email": "not-mail"}, 422),
        ({"name": "Ada"}, 400),
        ({"shopify_customer_id": 2**63}, 400),  # past a bigint: it could never be fulfilled
    ],
)
async def test_a_merchant_request_without_a_usable_customer_is_refused(container, body, status):
    shop = await add_shop(container)
    response = await _api(container, "POST", "/api/v1/gdpr/requests", shop, json=body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    async with container.uow.for_shop(shop.id) as uow:
        assert await uow.gdpr.page(limit=5) == []


async def test_a_signed_body_naming_another_shop_is_ignored_not_applied(container):
    shop = await add_shop(container)
    await _customers(container, shop, ADA)
    payload = {**_compliance(ADA), "shop_domain": "someone-else.myshopify.com"}
    async with client(create_app(container)) as http:
        response = await send_webhook(
            http,
            "/webhooks/shopify",
            topic="customers/redact",
            shop=shop.domain,  # the header, which the signature does not cover
            payload=payload,
            secret=container.settings.shopify_api_secret,
        )
    await drain(container, "webhooks")

    assert response.status_code == 200
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic="customers/redact", limit=5)
        ada = await uow.contacts.find(phone=ADA["phone"])
    assert event.status is EventStatus.IGNORED and "another shop" in event.error
    assert ada is not None and ada.redacted_at is None, "nothing was erased"


async def test_customer_redact_erases_the_customer_everywhere(container, database_url):
    shop = await add_shop(container)
    await _customers(container, shop, ADA, BOB)
    await _deliver(container, shop, "customers/data_request", _compliance(ADA))
    async with container.uow.for_shop(shop.id) as uow:
        ada = await uow.contacts.find(phone=ADA["phone"])
        [export] = await uow.gdpr.page(limit=5)

    await _deliver(container, shop, "customers/redact", _compliance(ADA, orders_to_redact=[7001]))

    assert await _plaintext_hits(database_url, ADA_NEEDLES) == []
    assert await _plaintext_hits(database_url, (shop.domain,)), "the scan finds plaintext"
    async with container.uow.for_shop(shop.id) as uow:
        tombstone = await uow.contacts.get(ada.id)
        history = await uow.consent.history(ada.id)
        bob = await uow.contacts.find(phone=BOB["phone"])
        redact, earlier = await uow.gdpr.page(limit=5)
        topics = [e.topic for e in await uow.webhooks.find(status=None, topic=None, limit=50)]
    assert (tombstone.phone, tombstone.email, tombstone.first_name, tombstone.last_name) == (
        None,
        None,
        None,
        None,
    )
    assert tombstone.shopify_customer_id is None and tombstone.redacted_at is not None
    assert tombstone.consent_state is ConsentState.REDACTED
    assert [e.new_state for e in history] == [ConsentState.SUBSCRIBED, ConsentState.REDACTED]
    assert history[-1].actor == "shopify:customers/redact" and verify_chain(history).valid
    assert bob.email == BOB["email"] and bob.consent_state is ConsentState.SUBSCRIBED
    assert (redact.kind, redact.status) == (RequestKind.REDACT, RequestStatus.FULFILLED)
    assert redact.subject.empty and earlier.id == export.id and earlier.subject.empty
    assert not earlier.has_bundle, "the earlier export of Ada went with her"
    # Ada's own deliveries left the inbox; Bob's and the compliance requests stayed.
    assert sorted(topics) == [
        "checkouts/create",
        "customers/create",
        "customers/data_request",
        "customers/redact",
    ]


async def test_a_refused_number_is_in_the_export_and_its_mark_leaves_with_the_erasure(container):
    shop = await add_shop(container)
    await _customers(container, shop, ADA)
    async with container.uow.for_shop(shop.id) as uow:
        ada = await uow.contacts.find(phone=ADA["phone"])
    await refuse_number(container, shop, ada.id, ADA["phone"])

    await _deliver(container, shop, "customers/data_request", _compliance(ADA))
    async with container.uow.for_shop(shop.id) as uow:
        [export] = await uow.gdpr.page(limit=5)
        bundle = json.loads(await uow.gdpr.bundle(export.id))
    await _deliver(container, shop, "customers/redact", _compliance(ADA))
    async with container.uow.for_shop(shop.id) as uow:
        tombstone = await uow.contacts.get(ada.id)

    assert bundle["contacts"][0]["phone_invalid_at"] == REFUSED_AT.isoformat()
    assert tombstone.redacted_at is not None and tombstone.phone_invalid_at is None


async def test_redacting_twice_is_harmless(container):
    shop = await add_shop(container)
    await _customers(container, shop, ADA)
    for _ in range(2):
        await _deliver(container, shop, "customers/redact", _compliance(ADA))
    async with container.uow.for_shop(shop.id) as uow:
        requests = await uow.gdpr.page(limit=5)
        [contact] = await uow.contacts.page(limit=5)
        history = await uow.consent.history(contact.id)
    assert [r.status for r in requests] == [RequestStatus.FULFILLED] * 2
    assert [e.new_state for e in history][-1] is ConsentState.REDACTED
    assert len(history) == 2 and verify_chain(history).valid


async def test_shop_redact_leaves_no_row_for_the_shop(container, database_url):
    shop, other = await add_shop(container), await add_shop(container)
    for s in (shop, other):
        await _customers(container, s, ADA)
        await _deliver(container, s, "customers/data_request", _compliance(ADA))
    async with container.uow.maintenance() as uow:
        await uow.oauth_states.put("nonce-1", shop.domain, container.clock.now() + timedelta(1))
        await uow.commit()
    await _deliver(container, shop, "app/uninstalled", {"id": 1})

    await _deliver(container, shop, "shop/redact", {"shop_id": 1, "shop_domain": shop.domain})
    await drain(container, "gdpr")

    assert await _rows_of_shop(database_url, shop.id) == {}
    assert await _rows_of_shop(database_url, other.id) != {}
    async with container.uow.maintenance() as uow:
        purged = (
            await uow.session.execute(
                text("SELECT shop_id, details FROM audit_log WHERE action = 'gdpr.shop.purged'")
            )
        ).one()
        nonces = await uow.session.scalar(text("SELECT count(*) FROM oauth_states"))
        waiting = await uow.session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE args->>'shop_id' = :shop AND status = 'todo'"
            ),
            {"shop": str(shop.id)},
        )
    assert purged.shop_id is None
    assert purged.details["shop_domain"] == shop.domain
    assert purged.details["shop_id"] == str(shop.id)
    assert (nonces, waiting) == (0, 0)


async def test_shop_redact_for_a_reinstalled_shop_is_held_for_a_decision(container):
    shop = await add_shop(container)  # installed: it came back before shop/redact

    await _deliver(container, shop, "shop/redact", {"shop_id": 1, "shop_domain": shop.domain})
    await drain(container, "gdpr")

    async with container.uow.for_shop(shop.id) as uow:
        assert (await uow.shops.get(shop.id)) is not None
        [request] = await uow.gdpr.page(limit=5)
    assert (request.kind, request.status) == (RequestKind.SHOP_REDACT, RequestStatus.FAILED)
    assert request.error.startswith("held")


async def test_a_reinstall_while_the_shop_is_purged_is_not_erased(container):
    shop = await add_shop(container)
    await _deliver(container, shop, "app/uninstalled", {"id": 1})

    def reinstall():
        credentials = ShopCredentials("shpat_new", ("read_customers",))
        return container.install_shop()(shop.domain, credentials, source="test")

    # The merchant is back between the purge's check that the shop is uninstalled and its
    # delete.
    async with racing_shop_read(reinstall):
        await container.purge_shop()(shop.id, actor="shopify")

    async with container.uow.for_shop(shop.id) as uow:
        current = await uow.shops.get(shop.id)
    assert current is not None and current.installed


async def _add_overdue_request(container, shop) -> GdprRequest:
    request = GdprRequest.receive(
        id=container.ids.new_id(),
        shop_id=shop.id,
        kind=RequestKind.DATA_REQUEST,
        source=RequestSource.SHOPIFY,
        subject=Subject(phone=ADA["phone"]),
        received_at=container.clock.now() - timedelta(days=31),
    )
    async with container.uow.for_shop(shop.id) as uow:
        await uow.gdpr.add(request)
        await uow.commit()
    return request


async def _run_overdue_task(container) -> None:
    # A worker started elsewhere in the suite may have queued the hourly sweep already;
    # the queueing lock refuses a second one, and draining runs whichever is queued.
    with contextlib.suppress(AlreadyEnqueued):
        await container.queue.tasks["gdpr:fulfil_overdue"].defer_async()
    await drain(container, "gdpr")


async def test_overdue_task_fulfils_a_late_request_and_the_gauge_reads_zero(container):
    shop = await add_shop(container)
    await _customers(container, shop, ADA)
    request = await _add_overdue_request(container, shop)
    async with container.uow.maintenance() as uow:
        assert await uow.gdpr.count_overdue(container.clock.now()) == 1
    GDPR_REQUESTS_OVERDUE.set(99)

    await _run_overdue_task(container)

    async with container.uow.for_shop(shop.id) as uow:
        done = await uow.gdpr.get(request.id)
        bundle = json.loads(await uow.gdpr.bundle(request.id))
    assert done.status is RequestStatus.FULFILLED and done.fulfilled_at is not None
    assert [c["phone"] for c in bundle["contacts"]] == [ADA["phone"]]
    assert REGISTRY.get_sample_value("blossom_gdpr_requests_overdue") == 0


async def test_a_failed_attempt_keeps_the_request_owed_until_the_sweep(container, monkeypatch):
    shop = await add_shop(container)

    async def broken(self, uow, request, *, actor):
        raise RuntimeError("export broke")

    monkeypatch.setattr(ExportCustomerData, "__call__", broken)
    await _deliver(container, shop, "customers/data_request", _compliance(ADA))
    async with container.uow.for_shop(shop.id) as uow:
        [request] = await uow.gdpr.page(limit=5)
        [event] = await uow.webhooks.find(status=None, topic=None, limit=5)
    assert (request.status, request.error) == (RequestStatus.PENDING, "RuntimeError")
    assert event.status is EventStatus.PROCESSED, "the delivery itself is handled"

    monkeypatch.undo()
    async with container.uow.maintenance() as uow:
        await uow.session.execute(
            text("UPDATE gdpr_requests SET received_at = received_at - interval '1 hour'")
        )
        await uow.commit()
    await _run_overdue_task(container)

    async with container.uow.for_shop(shop.id) as uow:
        retried = await uow.gdpr.get(request.id)
    assert (retried.status, retried.error, retried.has_bundle) == (
        RequestStatus.FULFILLED,
        None,
        True,
    )
    assert REGISTRY.get_sample_value("blossom_gdpr_requests_overdue") == 0


async def test_a_database_error_in_an_attempt_still_leaves_the_request_on_record(
    container, monkeypatch
):
    shop = await add_shop(container)

    async def broken(self, uow, request, *, actor):
        await uow.session.execute(text("SELECT 1 / 0"))  # the database refuses mid-attempt

    monkeypatch.setattr(RedactCustomer, "__call__", broken)
    await _deliver(container, shop, "customers/redact", _compliance(ADA))

    async with container.uow.for_shop(shop.id) as uow:
        [request] = await uow.gdpr.page(limit=5)
        [event] = await uow.webhooks.find(status=None, topic="customers/redact", limit=5)
    assert (request.status, request.error) == (RequestStatus.PENDING, "DBAPIError")
    assert event.status is EventStatus.PROCESSED


async def test_shop_a_cannot_list_read_or_touch_shop_b_requests(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    await _customers(container, shop_b, BOB)
    await _deliver(container, shop_b, "customers/data_request", _compliance(BOB))
    async with container.uow.for_shop(shop_b.id) as uow:
        [b_request] = await uow.gdpr.page(limit=5)

    listed = await _api(container, "GET", "/api/v1/gdpr/requests", shop_a)
    download = await _api(
        container, "GET", f"/api/v1/gdpr/requests/{b_request.id}/download", shop_a
    )
    own = await _api(
        container, "POST", "/api/v1/gdpr/requests", shop_a, json={"phone": BOB["phone"]}
    )
    export = await _api(
        container, "GET", f"/api/v1/gdpr/requests/{own.json()['id']}/download", shop_a
    )

    assert listed.status_code == 200 and listed.json()["items"] == []
    assert download.status_code == 404
    assert own.status_code == 201 and export.json()["contacts"] == [], "B's contact stays B's"
    async with container.uow.for_shop(shop_a.id) as uow:
        assert await uow.gdpr.get(b_request.id) is None
        assert await uow.gdpr.bundle(b_request.id) is None
        # Deliberately unscoped SQL: only row-level security stands in the way here.
        seen = await uow.session.scalar(
            text("SELECT count(*) FROM gdpr_requests WHERE id = :id"), {"id": b_request.id}
        )
        changed = await uow.session.execute(
            text("UPDATE gdpr_requests SET bundle = NULL WHERE id = :id"), {"id": b_request.id}
        )
    assert (seen, changed.rowcount) == (0, 0)
    async with container.uow.for_shop(shop_b.id) as uow:
        assert (await uow.gdpr.get(b_request.id)).has_bundle


async def _order_shipped(container, shop, *customers: dict) -> list:
    """A text to each customer's contact, as an order update would send it."""
    async with container.uow.for_shop(shop.id) as uow:
        contacts = [await uow.contacts.find(phone=c["phone"]) for c in customers]
        queued = await container.queue_messages()(
            uow,
            await uow.shops.get(shop.id),
            [
                OutgoingMessage(
                    text=f"Hi {c.first_name}, your order shipped",
                    category=MessageCategory.TRANSACTIONAL,
                    source="test",
                    idempotency_key=f"gdpr:{c.id}",
                    contact_id=c.id,
                )
                for c in contacts
            ],
        )
        await uow.commit()
    return queued


async def test_customer_redact_erases_the_numbers_and_texts_of_their_messages(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    await _customers(container, shop, ADA, BOB)
    queued = await _order_shipped(container, shop, ADA, BOB)

    await _deliver(container, shop, "customers/redact", _compliance(ADA))

    async with container.uow.for_shop(shop.id) as uow:
        ada_message, bob_message = [await uow.messages.get(q.message_id) for q in queued]
    assert (ada_message.to, ada_message.text) == ("", "")
    assert bob_message.to == BOB["phone"] and "Bob" in bob_message.text


async def test_customer_redact_takes_the_customer_out_of_an_import_still_queued(container):
    shop = await add_shop(container)
    await _customers(container, shop, ADA)
    rows = [
        "(415) 555-0101,,Ada,Lovelace",  # her phone, as a merchant types it
        "(415) 555-0177,ADA.Lovelace@Example.com,Ada,",  # her e-mail, on another number
        f"{BOB['phone']},{BOB['email']},Bob,Babbage",
    ]
    import_id = await _start(container, shop, rows, header="phone,email,first_name,last_name")

    await _deliver(container, shop, "customers/redact", _compliance(ADA))
    async with container.uow.for_shop(shop.id) as uow:
        queued = await uow.imports.get(import_id)
    await drain(container, "consent")

    left = queued.csv_text.lower()
    assert not [n for n in (*ADA_NEEDLES, "555-0177") if n.lower() in left]
    async with container.uow.for_shop(shop.id) as uow:
        done = await uow.imports.get(import_id)
        found = [await uow.contacts.find(phone=p) for p in (ADA["phone"], "+14155550177")]
        bob = await uow.contacts.find(phone=BOB["phone"])
    assert found == [None, None], "the erased customer is back"
    assert bob.last_name == "Babbage"
    assert (done.processed, done.imported, done.errors) == (3, 1, [])


async def _someone_waits_for_a_lock(container) -> bool:
    async with container.uow.maintenance() as uow:
        waiting = await uow.session.scalar(
            text(
                "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
                "WHERE NOT granted AND datname = current_database()"
            )
        )
    return bool(waiting)


async def _redaction_in_flight(container, shop, customer: dict) -> asyncio.Future[None]:
    """Another worker's redaction, let go until it is done or waits for a lock."""
    redaction = asyncio.ensure_future(
        _deliver(container, shop, "customers/redact", _compliance(customer))
    )
    while not redaction.done() and not await _someone_waits_for_a_lock(container):
        pass
    return redaction


async def test_a_redaction_during_an_import_batch_erases_what_it_wrote_and_the_rows_to_come(
    container, monkeypatch
):
    monkeypatch.setattr(import_contacts, "BATCH", 2)
    shop = await add_shop(container)
    rows = [
        "(415) 555-0110,,",
        "(415) 555-0101,,Ada",  # her phone: the redaction starts while this batch writes
        '(415) 555-0177,ada.lovelace@example.com,"Ada\nLovelace"',  # her e-mail, two lines
        "12,,",  # fails, and must still be reported as line 6
        "(415) 555-0111,,",
    ]
    import_id = await _start(container, shop, rows, header="phone,email,first_name")
    redactions = []

    async def redact() -> None:
        redactions.append(await _redaction_in_flight(container, shop, ADA))

    report = await _importer_acting_at(container, "(415) 555-0101", redact)(shop.id, import_id)
    await redactions[0]

    async with container.uow.for_shop(shop.id) as uow:
        found = [
            await uow.contacts.find(phone=p)
            for p in ("+14155550110", ADA["phone"], "+14155550177", "+14155550111")
        ]
    assert [c is not None for c in found] == [True, False, False, True]
    assert (report.processed, report.imported) == (5, 3), "no row skipped, none twice"
    assert [e["line"] for e in report.errors] == [6]


async def _texting_shop(container, number: str):
    """A shop with a sending number of its own, so texts to that number are its texts."""
    shop = await add_shop(container)
    await set_messaging(container, shop, sender=number)
    await fund(container, shop, 100)
    async with container.uow.for_shop(shop.id) as uow:
        return await uow.shops.get(shop.id)


async def _text_in(container, shop, sender: str, body: str) -> None:
    number = shop.settings["messaging"]["sender"]
    inbound = InboundTextIn(None, sender, number, body, received_at=None)
    assert (await container.receive_inbound_text()(inbound)).outcome == "stored"


async def _texts_with(container, shop, phone: str) -> tuple[list[str], list[str]]:
    """(texts from, texts to) this number in this shop, oldest first."""
    async with container.uow.for_shop(shop.id) as uow:
        inbox = await uow.messages.inbound_page(limit=50)
        sent = await uow.messages.page(limit=50)
    return (
        [i.message.text for i in reversed(inbox) if i.message.sender == phone],
        [m.text for m in reversed(sent) if m.to == phone],
    )


async def _phone_digests_left(container) -> int:
    async with container.uow.maintenance() as uow:
        return await uow.session.scalar(
            text(
                "SELECT (SELECT count(*) FROM messages WHERE recipient_index IS NOT NULL)"
                " + (SELECT count(*) FROM inbound_messages WHERE sender_index IS NOT NULL)"
            )
        )


@pytest.mark.parametrize("becomes_a_customer", [False, True])
async def test_customer_redact_erases_texts_her_number_exchanged_before_it_was_a_contact(
    container, database_url, becomes_a_customer
):
    shop = await _texting_shop(container, "+15550004001")
    await _text_in(container, shop, ADA["phone"], "HELP")
    await _text_in(container, shop, ADA["phone"], "Ada Lovelace here: do you ship to Canada?")
    assert len((await _texts_with(container, shop, ADA["phone"]))[1]) == 1, "the HELP reply"
    if becomes_a_customer:
        await _customers(container, shop, ADA)

    await _deliver(container, shop, "customers/redact", _compliance(ADA))

    assert await _texts_with(container, shop, ADA["phone"]) == ([], [])
    assert await _phone_digests_left(container) == 0, "no digest ties a row to her number"
    assert await _plaintext_hits(database_url, ADA_NEEDLES) == []


async def test_customer_redact_leaves_another_shops_texts_with_the_same_number(container):
    shop, other = (
        await _texting_shop(container, "+15550004002"),
        await _texting_shop(container, "+15550004003"),
    )
    for s in (shop, other):
        await _text_in(container, s, ADA["phone"], "HELP")
        await _text_in(container, s, ADA["phone"], "Do you ship to Canada?")

    await _deliver(container, shop, "customers/redact", _compliance(ADA))

    assert await _texts_with(container, shop, ADA["phone"]) == ([], [])
    received, [reply] = await _texts_with(container, other, ADA["phone"])
    assert received == ["HELP", "Do you ship to Canada?"] and reply


async def _exported(container, shop, customer: dict) -> dict:
    await _deliver(container, shop, "customers/data_request", _compliance(customer))
    async with container.uow.for_shop(shop.id) as uow:
        [request, *_] = await uow.gdpr.page(limit=5)
        return json.loads(await uow.gdpr.bundle(request.id))


async def test_the_export_holds_the_texts_to_and_from_the_customer_and_what_she_waits_for(
    container,
):
    shop, other = (
        await _texting_shop(container, "+15550004004"),
        await _texting_shop(container, "+15550004005"),
    )
    for s in (shop, other):  # she texted both shops before she was a contact of either
        await _text_in(container, s, ADA["phone"], "HELP")
        await _text_in(container, s, ADA["phone"], f"Do you ship to Canada, {s.name}?")
        await _customers(container, s, ADA)
        await _order_shipped(container, s, ADA)
    async with container.uow.for_shop(shop.id) as uow:
        ada = await uow.contacts.find(phone=ADA["phone"])
        await uow.back_in_stock.add(ada.id, 4455, "Text me once when it is back")
        await uow.commit()

    bundle = await _exported(container, shop, ADA)

    help_reply, shipped = bundle["messages"]
    assert (help_reply["to"], help_reply["contact_id"], help_reply["category"]) == (
        ADA["phone"],
        None,
        "system",
    )
    assert (shipped["to"], shipped["contact_id"], shipped["text"]) == (
        ADA["phone"],
        str(ada.id),
        "Hi Ada, your order shipped",
    )
    assert (shipped["category"], shipped["source"], shipped["status"]) == (
        "transactional",
        "test",
        "queued",
    )
    assert shipped["created_at"] and shipped["sent_at"] is None
    assert [(t["sender"], t["contact_id"], t["text"]) for t in bundle["inbound_messages"]] == [
        (ADA["phone"], None, "HELP"),
        (ADA["phone"], None, f"Do you ship to Canada, {shop.name}?"),
    ]
    [waiting] = bundle["back_in_stock_requests"]
    assert (waiting["variant_id"], waiting["wording"], waiting["notified_at"]) == (
        4455,
        "Text me once when it is back",
        None,
    )
    assert other.name not in json.dumps(bundle), "nothing of the other shop's"


async def test_texts_stored_before_the_phone_index_are_found_by_number_once_indexed(container):
    shop = await _texting_shop(container, "+15550004006")
    await _text_in(container, shop, ADA["phone"], "HELP")
    async with container.uow.maintenance() as uow:  # as stored before the index existed
        await uow.session.execute(text("UPDATE messages SET recipient_index = NULL"))
        await uow.session.execute(text("UPDATE inbound_messages SET sender_index = NULL"))
        await uow.commit()

    indexed = await IndexMessagePhones(container.uow, batch=1)()
    again = await IndexMessagePhones(container.uow)()
    await _deliver(container, shop, "customers/redact", _compliance(ADA))

    assert (indexed, again) == (2, 0), "the text and its reply, once"
    assert await _texts_with(container, shop, ADA["phone"]) == ([], [])
