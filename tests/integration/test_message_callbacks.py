"""Mitto's callbacks through the real app: delivery reports move messages forward once,
inbound keywords change consent for the shop whose number was texted, and nothing is
accepted without the callback secret."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from application.messaging.queue_messages import OutgoingMessage
from application.ports import Correspondent
from domain.consent import ConsentSource, ConsentState
from domain.messages import MessageCategory, MessageStatus
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.support.http import client
from tests.support.messaging import (
    CALLBACK_SECRET,
    add_contacts,
    fake_mitto_container,
    fund,
    set_messaging,
)
from tests.support.queue import drain

pytestmark = pytest.mark.usefixtures("clean_db")

DLR = f"/webhooks/mitto/dlr?token={CALLBACK_SECRET}"
INBOUND = f"/webhooks/mitto/inbound?token={CALLBACK_SECRET}"


async def _sent_message(container, shop, contact) -> uuid.UUID:
    # An order update goes now, whatever the hour in the contact's zone.
    await set_messaging(container, shop, transactional_bypass_quiet_hours=True)
    request = OutgoingMessage(
        text="Your order has shipped",
        category=MessageCategory.TRANSACTIONAL,
        source="test",
        idempotency_key=f"test:{uuid.uuid4()}",
        contact_id=contact.id,
    )
    async with container.uow.for_shop(shop.id) as uow:
        [queued] = await container.queue_messages()(uow, await uow.shops.get(shop.id), [request])
        await uow.commit()
    await drain(container, "messages")
    return queued.message_id


async def _message(container, shop, message_id):
    async with container.uow.for_shop(shop.id) as uow:
        return await uow.messages.get(message_id)


async def _with_number(container, number: str):
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.shops.get(shop.id)
        stored.settings = {"messaging": {"sender": number}}
        await uow.shops.save(stored)
        await uow.commit()
    await fund(container, shop, 1000)
    return stored


async def test_delivery_reports_move_a_message_forward_once(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop = await add_shop(container)
        await fund(container, shop, 1000)
        [contact] = await add_contacts(container, shop, ["+14155550201"])
        message_id = await _sent_message(container, shop, contact)
        provider_id = fake.by_reference(str(message_id)).provider_id
        async with client(create_app(container)) as http:
            delivered = await http.post(
                DLR, json={"msgid": provider_id, "reference": str(message_id), "status": "DELIVRD"}
            )
            replay = await http.post(
                DLR, json={"msgid": provider_id, "reference": str(message_id), "status": "DELIVRD"}
            )
            late = await http.post(DLR, data={"messageId": provider_id, "stat": "Undeliverable"})
            unknown = await http.get(DLR + "&msgid=nobody&status=Delivered")

        assert [r.json()["status"] for r in (delivered, replay, late, unknown)] == [
            "applied",
            "duplicate",
            "stale",
            "held",
        ]
        message = await _message(container, shop, message_id)
        assert message.status is MessageStatus.DELIVERED
        async with container.uow.for_shop(shop.id) as uow:
            history = await uow.messages.history(message_id)
            assert await uow.wallet.balanced()
        assert [h.status for h in history] == [
            MessageStatus.QUEUED,
            MessageStatus.SENT,
            MessageStatus.DELIVERED,
        ]


async def _set_provider_id(container, message_id: uuid.UUID, provider_id: str | None) -> None:
    async with container.uow.maintenance() as uow:
        await uow.session.execute(
            text("UPDATE messages SET provider_id = :provider_id WHERE id = :id"),
            {"provider_id": provider_id, "id": message_id},
        )
        await uow.commit()


async def test_a_report_that_outruns_its_send_is_held_and_applied_by_the_sweep(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop = await add_shop(container)
        await fund(container, shop, 1000)
        [contact] = await add_contacts(container, shop, ["+14155550209"])
        message_id = await _sent_message(container, shop, contact)
        provider_id = fake.by_reference(str(message_id)).provider_id
        # As between Mitto's answer and our saving its id: the report names only that id.
        await _set_provider_id(container, message_id, None)
        report = {"msgid": provider_id, "status": "DELIVRD"}
        async with client(create_app(container)) as http:
            early = await http.post(DLR, json=report)
            replay = await http.post(DLR, json=report)
        await _set_provider_id(container, message_id, provider_id)

        first = await container.sweep_messages()()
        again = await container.sweep_messages()()

        assert [r.json()["status"] for r in (early, replay)] == ["held", "duplicate"]
        assert (first.reports_matched, again.reports_matched) == (1, 0)
        message = await _message(container, shop, message_id)
        assert message.status is MessageStatus.DELIVERED
        async with container.uow.for_shop(shop.id) as uow:
            assert await uow.wallet.balanced()


async def test_a_held_report_is_sealed_from_the_service_and_dropped_after_72_hours(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        async with client(create_app(container)) as http:
            held = await http.get(DLR + "&msgid=mitto-404&status=Delivered")
        kept = await container.sweep_messages()()
        async with container.uow.maintenance() as uow:
            payload = await uow.session.scalar(text("SELECT payload FROM unmatched_reports"))
            await uow.session.execute(
                text("UPDATE unmatched_reports SET received_at = received_at - interval '73h'")
            )
            await uow.commit()
        async with container.sessions() as session:
            with pytest.raises(DBAPIError, match="permission denied"):
                await session.execute(text("SELECT payload FROM unmatched_reports"))
        dropped = await container.sweep_messages()()
        async with container.uow.maintenance() as uow:
            left = await uow.session.scalar(text("SELECT count(*) FROM unmatched_reports"))

    assert held.json()["status"] == "held"
    assert "mitto-404" not in payload, "held payloads are encrypted like stored reports"
    assert (kept.reports_matched, kept.reports_dropped) == (0, 0)
    assert (dropped.reports_dropped, left) == (1, 0)


async def test_a_rejection_report_refunds_a_captured_message(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_fake, container):
        shop = await add_shop(container)
        await fund(container, shop, 1000)
        [contact] = await add_contacts(container, shop, ["+14155550202"])
        message_id = await _sent_message(container, shop, contact)
        async with client(create_app(container)) as http:
            response = await http.post(
                DLR, json={"reference": str(message_id), "status": "REJECTD", "errorCode": "34"}
            )
        assert response.status_code == 200
        message = await _message(container, shop, message_id)
        assert message.status is MessageStatus.REJECTED and "34" in message.error
        async with container.uow.for_shop(shop.id) as uow:
            wallet = await uow.wallet.balance()
        assert (wallet.balance, wallet.reserved) == (1000, 0)


async def test_callbacks_without_the_secret_or_readable_fields_are_refused(database_url, data_dir):
    async with (
        fake_mitto_container(database_url, data_dir) as (_, container),
        client(create_app(container)) as http,
    ):
        no_token = await http.post("/webhooks/mitto/dlr", json={"msgid": "x", "status": "x"})
        wrong = await http.post(
            "/webhooks/mitto/inbound?token=guess", json={"from": "1", "to": "2", "text": "x"}
        )
        empty = await http.post(DLR, json={"status": "Delivered"})
        not_json = await http.post(
            DLR, content=b"{nope", headers={"content-type": "application/json"}
        )
        too_deep = await http.post(
            INBOUND, content=b"[" * 100_000, headers={"content-type": "application/json"}
        )
    refused = (no_token, wrong, empty, not_json, too_deep)
    assert [r.status_code for r in refused] == [401, 401, 400, 400, 400]
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in refused)


async def test_stop_unsubscribes_only_at_the_texted_shop_and_confirms_once(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        number_a, number_b = "+15550002001", "+15550002002"
        shop_a = await _with_number(container, number_a)
        shop_b = await _with_number(container, number_b)
        phone = "+14155550203"
        [contact_a] = await add_contacts(container, shop_a, [phone])
        [contact_b] = await add_contacts(container, shop_b, [phone])
        async with client(create_app(container)) as http:
            first = await http.post(
                INBOUND, json={"from": phone[1:], "to": number_a[1:], "text": "Stop", "id": "mo-1"}
            )
            replay = await http.post(
                INBOUND, json={"from": phone[1:], "to": number_a[1:], "text": "Stop", "id": "mo-1"}
            )
            again = await http.post(
                INBOUND, json={"from": phone[1:], "to": number_a[1:], "text": "STOP", "id": "mo-2"}
            )
        await drain(container, "messages")

        assert [r.json()["status"] for r in (first, replay, again)] == [
            "stored",
            "duplicate",
            "stored",
        ]
        async with container.uow.for_shop(shop_a.id) as uow:
            a = await uow.contacts.get(contact_a.id)
            [event] = [e for e in await uow.consent.history(a.id) if e.new_state is a.consent_state]
            sent = await uow.messages.page(limit=10)
        async with container.uow.for_shop(shop_b.id) as uow:
            b = await uow.contacts.get(contact_b.id)
        assert (a.consent_state, event.source) == (ConsentState.UNSUBSCRIBED, ConsentSource.KEYWORD)
        assert b.consent_state is ConsentState.SUBSCRIBED
        assert [(m.source, m.status) for m in sent] == [("keyword", MessageStatus.SENT)]
        assert "unsubscribed" in sent[0].text
        async with container.uow.for_shop(shop_a.id) as uow:
            wallet = await uow.wallet.balance()
        assert (wallet.balance, wallet.reserved) == (1000 - sent[0].credits, 0), "replies are paid"
        assert sum(fake.accepted_by_reference.values()) == 1
        assert fake.accepted[0].sender == number_a[1:]


async def test_the_ledger_records_what_a_reply_asked_never_its_words(database_url, data_dir):
    """The ledger is plain and append-only: a name in a reply could never be erased there."""
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        number, phone = "+15550002011", "+14155550211"
        shop = await _with_number(container, number)
        [contact] = await add_contacts(container, shop, [phone])
        body = {"from": phone[1:], "to": number[1:], "text": "Ada Lovelace here, stop texting me"}
        async with client(create_app(container)) as http:
            await http.post(INBOUND, json=body)
        async with container.uow.for_shop(shop.id) as uow:
            [*_, stop] = await uow.consent.history(contact.id)
        assert (stop.new_state, stop.wording) == (ConsentState.UNSUBSCRIBED, "reply: opt_out")


async def test_a_report_for_an_erased_recipient_keeps_no_payload(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        shop = await add_shop(container)
        await fund(container, shop, 1000)
        [contact] = await add_contacts(container, shop, ["+14155550212"])
        message_id = await _sent_message(container, shop, contact)
        async with container.uow.for_shop(shop.id) as uow:
            await uow.messages.redact_correspondent(Correspondent((contact.id,), ()))
            await uow.commit()
        report = {"reference": str(message_id), "status": "DELIVRD", "to": "14155550212"}
        async with client(create_app(container)) as http:
            assert (await http.post(DLR, json=report)).status_code == 200
        async with container.uow.maintenance() as uow:
            [(report_id, sealed)] = (
                await uow.session.execute(text("SELECT id, payload FROM message_reports"))
            ).all()
        assert container.cipher.decrypt(sealed, context=f"message_reports:{report_id}") == ""


async def test_start_resubscribes_help_replies_and_other_text_is_kept(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        number = "+15550002003"
        shop = await _with_number(container, number)
        phone = "+14155550204"
        [contact] = await add_contacts(container, shop, [phone], state=ConsentState.UNSUBSCRIBED)

        async def text(body: str) -> dict[str, str]:
            async with client(create_app(container)) as http:
                response = await http.post(
                    INBOUND, data={"msisdn": phone[1:], "to": number[1:], "text": body}
                )
            return response.json()

        start = await text("start")
        help_ = await text("HELP")
        chat = await text("Do you ship to Canada?")
        stranger = await text_from_stranger(container, number)

        assert (start["keyword"], help_["keyword"], chat["keyword"]) == ("opt_in", "help", "none")
        assert stranger["keyword"] == "help"
        async with container.uow.for_shop(shop.id) as uow:
            fresh = await uow.contacts.get(contact.id)
            replies = await uow.messages.page(limit=10)
            inbox = await uow.messages.inbound_page(limit=10)
        assert fresh.consent_state is ConsentState.SUBSCRIBED
        assert sorted(m.source for m in replies) == ["keyword"] * 3  # START, HELP, stranger HELP
        assert any(shop.name in m.text and "help" in m.text.lower() for m in replies)
        assert {i.message.text for i in inbox} >= {"Do you ship to Canada?"}


async def test_help_names_the_shops_support_address_else_its_domain(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        number = "+15550002007"
        shop = await _with_number(container, number)

        async def ask_for_help() -> str:
            async with client(create_app(container)) as http:
                await http.post(
                    INBOUND, json={"from": "14155550211", "to": number[1:], "text": "HELP"}
                )
            await drain(container, "messages")
            return fake.accepted[-1].text

        by_domain = await ask_for_help()
        async with container.uow.for_shop(shop.id) as uow:
            stored = await uow.shops.get(shop.id, for_update=True)
            stored.settings = {**stored.settings, "support_email": "care@blossom.example"}
            await uow.shops.save(stored)
            await uow.commit()
        by_email = await ask_for_help()

    assert by_domain.startswith(f"{shop.name}:") and shop.domain in by_domain
    assert "care@blossom.example" in by_email and "STOP" in by_email


async def text_from_stranger(container, number: str) -> dict[str, str]:
    async with client(create_app(container)) as http:
        response = await http.post(
            INBOUND, json={"from": "14155550299", "to": number[1:], "text": "info"}
        )
    return response.json()


async def test_y_confirms_a_pending_double_opt_in(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        number = "+15550002004"
        shop = await _with_number(container, number)
        phone = "+14155550205"
        [contact] = await add_contacts(container, shop, [phone], state=ConsentState.PENDING)
        async with client(create_app(container)) as http:
            response = await http.post(
                INBOUND, json={"from": phone[1:], "to": number[1:], "text": "y"}
            )
        assert response.json()["keyword"] == "confirm"
        async with container.uow.for_shop(shop.id) as uow:
            fresh = await uow.contacts.get(contact.id)
            [*_, last] = await uow.consent.history(contact.id)
        assert fresh.consent_state is ConsentState.SUBSCRIBED
        assert last.source is ConsentSource.DOUBLE_OPT_IN


# The second is an Inmarsat phone: a number of no country.
@pytest.mark.parametrize("sender", ["14155550207", "870773111632"])
async def test_stop_from_an_unknown_number_is_kept_as_an_opt_out(database_url, data_dir, sender):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        number = "+15550002005"
        shop = await _with_number(container, number)
        async with client(create_app(container)) as http:
            response = await http.post(
                INBOUND, json={"from": sender, "to": number[1:], "text": "unsubscribe\x00"}
            )
        assert response.json()["keyword"] == "opt_out"
        async with container.uow.for_shop(shop.id) as uow:
            contact = await uow.contacts.find(phone=f"+{sender}")
            [event] = await uow.consent.history(contact.id)
        assert contact.consent_state is ConsentState.UNSUBSCRIBED
        assert event.source is ConsentSource.KEYWORD


async def test_an_inbound_text_to_an_unclaimed_number_is_acknowledged(database_url, data_dir):
    async with (
        fake_mitto_container(database_url, data_dir) as (_, container),
        client(create_app(container)) as http,
    ):
        response = await http.post(
            INBOUND, json={"from": "14155550206", "to": "15550009999", "text": "STOP"}
        )
    assert response.status_code == 200 and response.json()["status"] == "unknown_number"


async def test_an_inbound_text_may_come_as_a_get_with_query_parameters(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        number = "+15550002006"
        shop = await _with_number(container, number)
        phone = "+14155550208"
        [contact] = await add_contacts(container, shop, [phone])
        query = {"token": CALLBACK_SECRET, "from": phone[1:], "to": number[1:], "text": "STOP"}
        async with client(create_app(container)) as http:
            response = await http.get("/webhooks/mitto/inbound", params=query)
        assert response.status_code == 200 and response.json()["keyword"] == "opt_out"
        async with container.uow.for_shop(shop.id) as uow:
            fresh = await uow.contacts.get(contact.id)
        assert fresh.consent_state is ConsentState.UNSUBSCRIBED
