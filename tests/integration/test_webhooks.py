"""Webhook ingress end to end: HTTP -> inbox -> job -> handler, on real Postgres."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from application.events.ingest_webhook import IngestWebhook
from application.events.process_webhook import ProcessWebhook
from application.events.replay_webhooks import ReplayWebhooks
from application.ports import InboxEntry
from application.tasks import PROCESS_WEBHOOK
from domain.events import EventStatus, WebhookDelivery
from domain.shops import ShopCredentials
from infrastructure.db.events import SqlWebhookInbox, SqlWebhookIntake
from infrastructure.queue.retry import BackoffRetry
from infrastructure.shopify.fake_server import send_webhook, webhook_signature
from infrastructure.shopify.signatures import sign_webhook
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.integration.test_session_and_proxy import _token
from tests.support import tasks
from tests.support.http import client
from tests.support.queue import drain
from tests.support.races import racing_shop_read
from tests.support.shopify import fake_shopify_container, install

pytestmark = pytest.mark.usefixtures("clean_db")

URL = "/webhooks/shopify"
W2_BODY = b'{"shop_id":954889,"shop_domain":"sms-demo.myshopify.com"}'


async def _send(container, shop, topic="orders/create", payload=None, **kwargs):
    async with client(create_app(container)) as http:
        return await send_webhook(
            http,
            URL,
            topic=topic,
            shop=shop.domain,
            payload=payload if payload is not None else {"id": 1, "phone": "+14155550132"},
            secret=container.settings.shopify_api_secret,
            **kwargs,
        )


async def _count(container, sql: str, **params) -> int:
    async with container.uow.maintenance() as uow:
        return await uow.session.scalar(text(sql), params)


async def _handle(container, shop, topic: str) -> None:
    """What a worker does with the shop's one stored delivery of `topic`."""
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=topic, limit=2)
    await ProcessWebhook(container.uow, container.webhook_handlers())(shop.id, event.id)


async def _current(container, shop):
    async with container.uow.for_shop(shop.id) as uow:
        return await uow.shops.get(shop.id)


async def test_valid_delivery_stores_one_encrypted_inbox_row_and_one_job(container):
    shop = await add_shop(container)
    response = await _send(container, shop, webhook_id="wh-1")

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert await _count(container, "SELECT count(*) FROM webhook_events") == 1
    assert (
        await _count(
            container,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'events:process_webhook'",
        )
        == 1
    )
    stored = await _count(
        container, "SELECT count(*) FROM webhook_events WHERE payload LIKE '%4155550132%'"
    )
    assert stored == 0, "the payload is encrypted at rest"


async def test_bad_hmac_is_401_problem_and_stores_nothing(container):
    shop = await add_shop(container)
    response = await _send(container, shop, signature="AAAA" + "A" * 40)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _count(container, "SELECT count(*) FROM webhook_events") == 0
    assert await _count(container, "SELECT count(*) FROM procrastinate_jobs") == 0


async def test_same_webhook_id_twice_makes_one_row_and_one_job(container):
    shop = await add_shop(container)
    first = await _send(container, shop, webhook_id="wh-dup")
    second = await _send(container, shop, webhook_id="wh-dup")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"status": "duplicate"}
    assert await _count(container, "SELECT count(*) FROM webhook_events") == 1
    assert await _count(container, "SELECT count(*) FROM procrastinate_jobs") == 1


async def test_compliance_vector_is_accepted_with_its_hmac_and_refused_without(container):
    """Contract §4.4: W2's body under the doc secret `hush`."""
    await add_shop(container, name="sms-demo")
    hushed = dataclasses.replace(
        container, settings=dataclasses.replace(container.settings, shopify_api_secret="hush")
    )
    headers = {
        "X-Shopify-Topic": "shop/redact",
        "X-Shopify-Shop-Domain": "sms-demo.myshopify.com",
        "X-Shopify-API-Version": "2026-07",
        "Content-Type": "application/json",
    }
    async with client(create_app(hushed)) as http:
        ok = await http.post(
            URL,
            content=W2_BODY,
            headers={
                **headers,
                "X-Shopify-Webhook-Id": "w2-ok",
                "X-Shopify-Hmac-Sha256": "iH6nqyRlGa11fWkPQ+n/RR/qter1Y35b8VWIuIZ9Xs0=",
            },
        )
        bad = await http.post(
            URL,
            content=W2_BODY,
            headers={
                **headers,
                "X-Shopify-Webhook-Id": "w2-bad",
                "X-Shopify-Hmac-Sha256": "iH6nqyRlGa11fWkPQ+n/RR/qter1Y35b8VWIuIZ9Xs1=",
            },
        )
    assert ok.status_code == 200 and ok.json() == {"status": "accepted"}
    assert bad.status_code == 401


async def test_previous_secret_is_accepted_during_rotation(container):
    shop = await add_shop(container)
    rotated = dataclasses.replace(
        container,
        settings=dataclasses.replace(
            container.settings,
            shopify_api_secret="new-secret",
            shopify_api_secret_previous=container.settings.shopify_api_secret,
        ),
    )
    async with client(create_app(rotated)) as http:
        old = await send_webhook(
            http,
            URL,
            topic="orders/create",
            shop=shop.domain,
            payload={"id": 1},
            secret=container.settings.shopify_api_secret,
        )
        new = await send_webhook(
            http,
            URL,
            topic="orders/create",
            shop=shop.domain,
            payload={"id": 2},
            secret="new-secret",
        )
    assert (old.status_code, new.status_code) == (200, 200)


async def test_missing_headers_and_unknown_topics_are_400(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        body = b"{}"
        signed = {
            "X-Shopify-Hmac-Sha256": sign_webhook(body, container.settings.shopify_api_secret)
        }
        missing = await http.post(URL, content=body, headers=signed)
    unknown = await _send(container, shop, topic="products/delete")
    assert missing.status_code == 400 and "x-shopify-topic" in missing.json()["detail"]
    assert unknown.status_code == 400


@pytest.mark.parametrize(
    ("header", "stored"),
    [
        ("2026-05-04T12:15:30+02:00", datetime(2026, 5, 4, 10, 15, 30, tzinfo=UTC)),
        ("2026-05-04T10:15:30", datetime(2026, 5, 4, 10, 15, 30, tzinfo=UTC)),
        ("0001-01-01T00:00:00+05:00", None),  # before the first UTC instant
        ("yesterday", None),
    ],
)
async def test_triggered_at_is_kept_in_utc_or_dropped_when_unreadable(container, header, stored):
    shop = await add_shop(container)
    response = await _send(container, shop, triggered_at=header)
    assert response.status_code == 200, response.text
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=10)
    assert event.triggered_at == stored


async def test_overlong_header_values_are_cut_to_fit_and_the_delivery_is_stored(container):
    shop = await add_shop(container)
    response = await _send(
        container, shop, webhook_id="w" * 300, event_id="e" * 300, api_version="2026-07" * 5
    )
    assert response.status_code == 200, response.text
    stored = await _count(
        container,
        "SELECT count(*) FROM webhook_events WHERE webhook_id = :w AND event_id = :e",
        w="w" * 255,
        e="e" * 255,
    )
    assert stored == 1


async def test_topic_without_handler_is_marked_ignored(container):
    shop = await add_shop(container)
    await _send(container, shop, topic="fulfillments/create")
    await drain(container, "webhooks")
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=10)
    assert event.status is EventStatus.IGNORED


async def test_shop_update_refreshes_name_and_locale(container):
    shop = await add_shop(container)
    await _send(
        container,
        shop,
        topic="shop/update",
        payload={
            "name": "Blossom Boutique",
            "currency": "EUR",
            "iana_timezone": "Europe/Paris",
            "country_code": "FR",
        },
    )
    await drain(container, "webhooks")
    async with container.uow.for_shop(shop.id) as uow:
        updated = await uow.shops.get(shop.id)
    assert (updated.name, updated.currency, updated.timezone, updated.country) == (
        "Blossom Boutique",
        "EUR",
        "Europe/Paris",
        "FR",
    )


async def test_a_payload_naming_its_own_shop_in_another_case_is_applied(container):
    shop = await add_shop(container)
    await _send(
        container,
        shop,
        topic="shop/update",
        payload={"name": "Blossom Case", "myshopify_domain": f" {shop.domain.upper()} "},
    )
    await drain(container, "webhooks")
    async with container.uow.for_shop(shop.id) as uow:
        assert (await uow.shops.get(shop.id)).name == "Blossom Case"


async def test_shop_update_with_odd_values_keeps_the_shops_own_and_is_processed(container):
    shop = await add_shop(container)
    await _send(
        container,
        shop,
        topic="shop/update",
        payload={"name": "N" * 300, "currency": "euros", "country_code": "001"},
    )
    await drain(container, "webhooks")
    async with container.uow.for_shop(shop.id) as uow:
        updated = await uow.shops.get(shop.id)
        [event] = await uow.webhooks.find(status=None, topic=None, limit=10)
    assert event.status is EventStatus.PROCESSED
    assert (updated.name, updated.currency, updated.country) == ("N" * 255, "USD", "US")


async def test_a_shop_update_older_than_the_last_one_applied_is_dropped(container):
    shop = await add_shop(container)
    deliveries = [
        ({"name": "New", "updated_at": "2026-11-20T10:05:00Z"}, None),
        # Older by its own time, which outranks the delivery's.
        ({"name": "Old", "updated_at": "2026-11-20T10:00:00Z"}, "2026-11-20T10:06:00Z"),
        # Older by the delivery's time, the payload having none.
        ({"iana_timezone": "Europe/Paris"}, "2026-11-20T10:04:00Z"),
        # No time at all: nothing to order it by, so it is applied.
        ({"currency": "EUR"}, "unreadable"),
    ]
    for payload, at in deliveries:
        await _send(container, shop, topic="shop/update", payload=payload, triggered_at=at)
        await drain(container, "webhooks")
    current = await _current(container, shop)
    assert (current.name, current.timezone, current.currency) == ("New", "UTC", "EUR")


async def test_app_uninstalled_erases_token_and_cancels_pending_jobs(container):
    shop = await add_shop(container)
    other = await add_shop(container)
    for s in (shop, other):
        async with container.uow.for_shop(s.id) as uow:
            await uow.credentials.save(ShopCredentials("shpat_secret", ("read_customers",)))
            await uow.jobs.defer(tasks.RECORD.job({"shop_id": str(s.id), "marker": "pending"}))
            await uow.commit()

    await _send(container, shop, topic="app/uninstalled", payload={"id": 1})
    await drain(container, "webhooks")

    async with container.uow.for_shop(shop.id) as uow:
        assert (await uow.shops.get(shop.id)).installed is False
        assert await uow.credentials.get() is None
    async with container.uow.for_shop(other.id) as uow:
        assert (await uow.shops.get(other.id)).installed is True
        assert await uow.credentials.get() is not None
    statuses = await _statuses(container)
    assert statuses == {str(shop.id): "cancelled", str(other.id): "todo"}


async def test_app_uninstalled_spares_waiting_work_that_records_what_shoppers_said(container):
    shop = await add_shop(container)
    later = container.clock.now() + timedelta(hours=1)  # e.g. a STOP's webhook awaiting retry
    async with container.uow.for_shop(shop.id) as uow:
        waiting = await uow.jobs.defer(
            PROCESS_WEBHOOK.job(
                {"shop_id": str(shop.id), "event_id": str(uuid.uuid4())}, scheduled_at=later
            )
        )
        send = await uow.jobs.defer(tasks.RECORD.job({"shop_id": str(shop.id)}))
        await uow.commit()

    await _send(container, shop, topic="app/uninstalled", payload={"id": 1})
    await drain(container, "webhooks")

    async with container.uow.maintenance() as uow:
        rows = await uow.session.execute(
            text("SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(:ids)"),
            {"ids": [waiting, send]},
        )
        statuses = dict(rows.all())
    assert statuses == {waiting: "todo", send: "cancelled"}


async def test_app_uninstalled_handled_after_a_reinstall_leaves_the_new_install(container):
    shop = await add_shop(container)
    fired = container.clock.now().isoformat()
    await _send(container, shop, topic="app/uninstalled", payload={"id": 1}, triggered_at=fired)
    # The merchant is back (managed install, token exchange) before a worker got to the
    # delivery: a backlog, or a first attempt that failed.
    await container.install_shop()(
        shop.domain, ShopCredentials("shpat_new", ("read_customers",)), source="test"
    )
    await _handle(container, shop, "app/uninstalled")

    async with container.uow.for_shop(shop.id) as uow:
        current = await uow.shops.get(shop.id)
        credentials = await uow.credentials.get()
    assert current.installed
    assert credentials is not None and credentials.access_token == "shpat_new"


async def test_a_shop_update_racing_app_uninstalled_leaves_the_shop_uninstalled(container):
    shop = await add_shop(container)
    await _send(container, shop, topic="shop/update", payload={"name": "Renamed"})
    await _send(container, shop, topic="app/uninstalled", payload={"id": 1})

    async with racing_shop_read(lambda: _handle(container, shop, "app/uninstalled")):
        await _handle(container, shop, "shop/update")

    current = await _current(container, shop)
    assert current.name == "Renamed" and not current.installed


async def test_a_settings_change_racing_app_uninstalled_leaves_the_shop_uninstalled(container):
    shop = await add_shop(container)
    await _send(container, shop, topic="app/uninstalled", payload={"id": 1})

    uninstall = racing_shop_read(lambda: _handle(container, shop, "app/uninstalled"), nth=2)
    # The first read is the session check's; the second is the one the change is saved over.
    async with uninstall, client(create_app(container)) as http:
        changed = await http.patch(
            "/api/v1/shop/settings",
            headers={"Authorization": f"Bearer {_token(shop.domain)}"},
            json={"cap_count": 2},
        )

    current = await _current(container, shop)
    assert changed.status_code == 200 and current.settings["messaging"]["cap_count"] == 2
    assert not current.installed


async def test_settings_copied_after_install_racing_app_uninstalled_leave_it_uninstalled(
    database_url, data_dir
):
    async with fake_shopify_container(database_url, data_dir) as (fake, container):
        shop = await install(fake, container)
        await _send(container, shop, topic="app/uninstalled", payload={"id": 1})

        # The first read decides to call Shopify; the second is the one its answer is saved over.
        async with racing_shop_read(lambda: _handle(container, shop, "app/uninstalled"), nth=2):
            await container.after_install()(shop.id)

        current = await _current(container, shop)
    assert current.name == fake.shops[shop.domain].name and not current.installed


async def _statuses(container) -> dict[str, str]:
    async with container.uow.maintenance() as uow:
        rows = await uow.session.execute(
            text(
                "SELECT args->>'shop_id', status::text FROM procrastinate_jobs "
                "WHERE task_name = 'testing:record'"
            )
        )
        return dict(rows.all())


def _fail_orders_create(container, monkeypatch, message: str) -> tuple[dict, list]:
    """The orders/create handler raises `message`; its job is retried at once, 3 times.
    Returns the handlers (to swap the failing one out) and the calls made."""
    calls = []

    async def failing(uow, event, payload):
        calls.append(event.id)
        raise RuntimeError(message)

    handlers = {**container.webhook_handlers(), "orders/create": failing}
    monkeypatch.setattr(type(container), "webhook_handlers", lambda self: handlers)
    task = container.queue.tasks["events:process_webhook"]
    monkeypatch.setattr(task, "retry_strategy", BackoffRetry(max_attempts=3, base_seconds=0))
    return handlers, calls


async def test_handler_failure_retries_then_is_listed_and_replayable(container, monkeypatch):
    shop = await add_shop(container)
    handlers, calls = _fail_orders_create(container, monkeypatch, "handler broke")

    await _send(container, shop, topic="orders/create", payload={"id": 7})
    await drain(container, "webhooks")

    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=EventStatus.FAILED, topic=None, limit=10)
    assert len(calls) == 3 and event.attempts == 3 and "handler broke" in event.error
    failed_jobs = await container.job_admin.list_jobs(status="failed", queue="webhooks", limit=10)
    assert len(failed_jobs) == 1

    handlers["orders/create"] = _succeed
    replayed = await ReplayWebhooks(container.uow).failed(shop.id, topic=None, actor="test")
    await drain(container, "webhooks")
    assert replayed == 1
    async with container.uow.for_shop(shop.id) as uow:
        assert (await uow.webhooks.get(event.id))[0].status is EventStatus.PROCESSED


async def test_a_replay_racing_the_waiting_job_runs_the_handler_once(container, monkeypatch):
    """`webhooks replay` of an event whose job still waits queues a second job; whichever
    runs second finds the event handled."""
    shop = await add_shop(container)
    await _send(container, shop, topic="orders/create", payload={"id": 7})
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=10)
    calls, second = [], []

    async def handler(uow, event, payload):
        calls.append(event.id)
        if not second:
            # The replayed job starts while this one is still inside its handler. It is
            # given a second to get in, which it must not.
            second.append(asyncio.ensure_future(process(shop.id, event.id)))
            await asyncio.wait(second, timeout=1.0)

    process = ProcessWebhook(container.uow, {"orders/create": handler})
    first = await process(shop.id, event.id)

    assert (first, await second[0]) == (EventStatus.PROCESSED, None)
    assert calls == [event.id]


async def test_replaying_the_failed_skips_one_a_waiting_retry_handles_meanwhile(
    container, monkeypatch
):
    """A failed event's retry job may still be waiting when the operator replays every
    failed event of the shop: if it handles the event between the replay's listing and its
    reset, the replay must leave the event handled, not run its handler a second time."""
    shop = await add_shop(container)
    await _send(container, shop, topic="orders/create", payload={"id": 7})
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=10)
        await uow.webhooks.mark(event.id, EventStatus.FAILED, error="first attempt broke")
        await uow.commit()
    calls = []

    async def handler(uow, event, payload):
        calls.append(event.id)

    monkeypatch.setattr(
        type(container), "webhook_handlers", lambda self: {"orders/create": handler}
    )
    find = SqlWebhookInbox.find

    async def find_then_retry_runs(self, **kwargs):
        found = await find(self, **kwargs)
        await ProcessWebhook(container.uow, container.webhook_handlers())(shop.id, event.id)
        return found

    monkeypatch.setattr(SqlWebhookInbox, "find", find_then_retry_runs)
    replayed = await ReplayWebhooks(container.uow).failed(shop.id, topic=None, actor="test")
    monkeypatch.setattr(SqlWebhookInbox, "find", find)
    await drain(container, "webhooks")

    async with container.uow.for_shop(shop.id) as uow:
        assert (await uow.webhooks.get(event.id))[0].status is EventStatus.PROCESSED
    assert replayed == 0
    assert calls == [event.id], "the handler ran once, for the retry"


async def test_a_failing_attempt_never_marks_failed_what_another_handled(container):
    shop = await add_shop(container)
    await _send(container, shop, topic="orders/create", payload={"id": 7})
    await drain(container, "webhooks")
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=10)
        await uow.webhooks.mark(event.id, EventStatus.FAILED, error="late failure")
        await uow.commit()
    async with container.uow.for_shop(shop.id) as uow:
        assert (await uow.webhooks.get(event.id))[0].status is EventStatus.PROCESSED


async def _succeed(uow, event, payload):
    return None


async def test_a_handler_failure_is_recorded_without_the_shoppers_details(container, monkeypatch):
    """The payload is encrypted at rest; the error column is not."""
    shop = await add_shop(container)
    _fail_orders_create(container, monkeypatch, "no contact for +14155550132 (jane@example.com)")

    await _send(container, shop, topic="orders/create", payload={"id": 7})
    await drain(container, "webhooks")

    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=EventStatus.FAILED, topic=None, limit=10)
    assert event.error == "RuntimeError: no contact for [phone] ([email])"


async def test_shop_b_cannot_read_shop_a_events(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    await _send(container, shop_a, webhook_id=str(uuid.uuid4()))
    async with container.uow.for_shop(shop_a.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=10)
    async with container.uow.for_shop(shop_b.id) as uow:
        assert await uow.webhooks.get(event.id) is None
        assert await uow.webhooks.find(status=None, topic=None, limit=10) == []
        assert await uow.webhooks.reset_many([event.id]) == []


async def test_prune_removes_handled_events_past_retention_and_keeps_pending_ones(container):
    shop = await add_shop(container)
    await _send(container, shop, topic="fulfillments/create")
    await drain(container, "webhooks")  # ignored
    await _send(container, shop, topic="orders/create")  # not drained: stays received
    async with container.uow.maintenance() as uow:
        await uow.session.execute(
            text(
                "UPDATE webhook_events SET processed_at = now() - interval '8 days', "
                "received_at = now() - interval '8 days'"
            )
        )
        await uow.commit()

    pruned = await container.prune_webhook_events()

    async with container.uow.for_shop(shop.id) as uow:
        left = [e.topic for e in await uow.webhooks.find(status=None, topic=None, limit=10)]
    assert pruned == 1 and left == ["orders/create"]


def _entry(domain: str, webhook_id: str, origin: dict | None = None) -> InboxEntry:
    delivery = WebhookDelivery(
        shop_domain=domain,
        topic="orders/create",
        webhook_id=webhook_id,
        event_id=None,
        triggered_at=None,
        api_version="2026-07",
        payload=b'{"id":1}',
    )
    return InboxEntry(delivery, origin or {})


async def _jobs(container) -> list[dict]:
    async with container.uow.maintenance() as uow:
        rows = await uow.session.scalars(
            text("SELECT args FROM procrastinate_jobs WHERE task_name = 'events:process_webhook'")
        )
        return list(rows)


async def _events(container, shop) -> dict[str, uuid.UUID]:
    async with container.uow.for_shop(shop.id) as uow:
        events = await uow.webhooks.find(status=None, topic=None, limit=100)
    return {event.webhook_id: event.id for event in events}


async def test_one_batch_stores_each_shops_deliveries_in_its_own_scope_once(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    await _send(container, shop_a, webhook_id="a-0")
    ingest = IngestWebhook(SqlWebhookIntake(container.engine, container.cipher))

    outcomes = await ingest(
        [
            _entry(shop_a.domain, "a-1", {"request_id": "req-a-1"}),
            _entry(shop_b.domain, "b-1"),
            _entry(shop_a.domain, "a-2"),
            _entry(shop_a.domain, "a-1"),  # a repeat inside the batch
            _entry("nobody-here.myshopify.com", "x-1"),
            _entry(shop_a.domain, "a-0"),  # stored by an earlier delivery
            _entry(shop_b.domain, "a-2"),  # same id, other shop: its own delivery
        ]
    )

    assert [o.value for o in outcomes] == [
        "accepted",
        "accepted",
        "accepted",
        "duplicate",
        "unknown_shop",
        "duplicate",
        "accepted",
    ]
    events_a, events_b = await _events(container, shop_a), await _events(container, shop_b)
    assert sorted(events_a) == ["a-0", "a-1", "a-2"] and sorted(events_b) == ["a-2", "b-1"]
    jobs = {(job["shop_id"], job["event_id"]): job for job in await _jobs(container)}
    expected = {(str(shop_a.id), str(i)) for i in events_a.values()} | {
        (str(shop_b.id), str(i)) for i in events_b.values()
    }
    assert set(jobs) == expected, "one job per stored delivery, naming its own shop"
    assert jobs[(str(shop_a.id), str(events_a["a-1"]))]["_meta"] == {"request_id": "req-a-1"}


async def test_concurrent_deliveries_share_commits_and_each_is_stored_once(container):
    shop = await add_shop(container)
    secret = container.settings.shopify_api_secret
    body = b'{"id":1}'
    sends = [(f"wh-{i % 20}", f"request-{i:04d}") for i in range(30)]  # 10 repeats
    batches = (
        REGISTRY.get_sample_value("blossom_group_commit_batch_size_count", {"writer": "webhooks"})
        or 0.0
    )

    async with client(create_app(container)) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    URL,
                    content=body,
                    headers={
                        "X-Shopify-Topic": "orders/create",
                        "X-Shopify-Hmac-Sha256": webhook_signature(body, secret),
                        "X-Shopify-Shop-Domain": shop.domain,
                        "X-Shopify-API-Version": "2026-07",
                        "X-Shopify-Webhook-Id": webhook_id,
                        "X-Request-ID": request_id,
                    },
                )
                for webhook_id, request_id in sends
            )
        )

    answers = Counter(response.json()["status"] for response in responses)
    assert answers == {"accepted": 20, "duplicate": 10}
    events = await _events(container, shop)
    assert len(events) == 20
    webhook_of_request = dict((r, w) for w, r in sends)
    jobs = await _jobs(container)
    assert sorted(job["event_id"] for job in jobs) == sorted(str(i) for i in events.values())
    for job in jobs:
        # Each job carries the request id of a request that brought its own delivery.
        webhook_id = webhook_of_request[job["_meta"]["request_id"]]
        assert str(events[webhook_id]) == job["event_id"]
    written = REGISTRY.get_sample_value(
        "blossom_group_commit_batch_size_count", {"writer": "webhooks"}
    )
    assert written - batches < len(sends), "concurrent deliveries shared transactions"


async def test_app_connections_hand_written_buffers_to_the_disk_as_they_go(container):
    # Without it, ingress's writes collect in the page cache until a checkpoint flushes
    # them all at once and every commit waits behind that flush.
    async with container.engine.connect() as connection:
        assert await connection.scalar(text("SHOW backend_flush_after")) == "256kB"
