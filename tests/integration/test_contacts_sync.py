"""Contacts and consent from Shopify webhooks, the ledger, and the push back to Shopify."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from application.contacts.create_contact import CreateContact, NewContact
from application.contacts.record_consent import ConsentChange, RecordConsent
from domain.consent import ConsentSource, ConsentState, verify_chain
from domain.events import EventStatus
from infrastructure.db.contacts import SqlContacts
from infrastructure.shopify.fake_server import send_webhook
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.support.http import client
from tests.support.messaging import CALLBACK_SECRET, REFUSED_AT, WORDING, refuse_number
from tests.support.queue import drain
from tests.support.shopify import fake_shopify_container, install, proxy_path

pytestmark = pytest.mark.usefixtures("clean_db")

SHOP_NUMBER, SHOPPER = "+15550002099", "+14155550132"


def _consent_payload(state: str, updated_at: str, *, phone: str = "(415) 555-0132") -> dict:
    return {
        "id": 207119551,
        "phone": phone,
        "sms_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": updated_at,
            "consent_collected_from": "OTHER",
        },
    }


async def _deliver(container, shop, topic: str, payload: dict) -> None:
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


async def _count(container, sql: str) -> int:
    async with container.uow.maintenance() as uow:
        return await uow.session.scalar(text(sql))


PHONE = "+4915112345678"
_TICKED = {"token": "c2", "phone": PHONE, "buyer_accepts_sms_marketing": True}


async def _contact(container, shop):
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone=PHONE)
        return contact, await uow.consent.history(contact.id)


async def test_consent_webhook_creates_one_contact_with_e164_phone_and_mapped_consent(container):
    shop = await add_shop(container)
    await _deliver(
        container,
        shop,
        "customers_marketing_consent/update",
        _consent_payload("subscribed", "2026-11-20T10:00:00Z"),
    )
    await _deliver(
        container,
        shop,
        "customers_marketing_consent/update",
        _consent_payload("subscribed", "2026-11-20T10:00:00Z"),
    )

    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone="+14155550132")
        history = await uow.consent.history(contact.id)
    assert contact.shopify_customer_id == 207119551
    assert contact.consent_state is ConsentState.SUBSCRIBED
    assert contact.country == "US"
    assert [(e.new_state, e.source) for e in history] == [
        (ConsentState.SUBSCRIBED, ConsentSource.SHOPIFY)
    ]
    assert verify_chain(history).valid
    assert await _count(container, "SELECT count(*) FROM contacts") == 1
    assert (
        await _count(
            container, "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'consent'"
        )
        == 0
    ), "a change that came from Shopify is never pushed back"
    stored = await _count(container, "SELECT count(*) FROM contacts WHERE phone LIKE '%555%'")
    assert stored == 0, "the phone is encrypted at rest"


async def test_an_older_consent_update_arriving_late_does_not_regress(container):
    shop = await add_shop(container)
    await _deliver(
        container,
        shop,
        "customers_marketing_consent/update",
        _consent_payload("subscribed", "2026-11-20T10:00:00Z"),
    )
    await _deliver(
        container,
        shop,
        "customers_marketing_consent/update",
        _consent_payload("unsubscribed", "2026-11-19T10:00:00Z"),
    )

    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(shopify_customer_id=207119551)
    assert contact.consent_state is ConsentState.SUBSCRIBED


async def test_an_older_customer_update_does_not_overwrite_a_newer_one(container):
    shop = await add_shop(container)
    base = {"id": 42, "phone": "+14155550177", "email": "Ada@Example.com"}
    await _deliver(
        container,
        shop,
        "customers/update",
        {**base, "first_name": "Ada", "updated_at": "2026-11-20T10:00:00Z"},
    )
    await _deliver(
        container,
        shop,
        "customers/update",
        {**base, "first_name": "Old", "updated_at": "2026-11-19T10:00:00Z"},
    )
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(shopify_customer_id=42)
    assert contact.first_name == "Ada" and contact.email == "ada@example.com"


async def test_a_new_number_from_shopify_drops_the_refusal_and_the_same_number_keeps_it(
    container,
):
    shop = await add_shop(container)
    customer = {"id": 43, "phone": "+14155550178", "updated_at": "2026-11-20T10:00:00Z"}
    await _deliver(container, shop, "customers/create", customer)

    async def stored():
        async with container.uow.for_shop(shop.id) as uow:
            return await uow.contacts.find(shopify_customer_id=43)

    await refuse_number(container, shop, (await stored()).id, customer["phone"])
    renamed = {**customer, "first_name": "Ada", "updated_at": "2026-11-21T10:00:00Z"}
    await _deliver(container, shop, "customers/update", renamed)
    same_number = await stored()
    moved = {**renamed, "phone": "+14155550179", "updated_at": "2026-11-22T10:00:00Z"}
    await _deliver(container, shop, "customers/update", moved)
    new_number = await stored()

    assert (same_number.first_name, same_number.phone_invalid_at) == ("Ada", REFUSED_AT)
    assert (new_number.phone, new_number.phone_invalid_at) == ("+14155550179", None)


async def test_checkout_sms_checkbox_subscribes_with_checkout_source_and_no_push(container):
    shop = await add_shop(container)
    await _deliver(
        container,
        shop,
        "checkouts/create",
        {
            "token": "c1",
            "phone": "+4915112345678",
            "buyer_accepts_sms_marketing": True,
            "customer": {"id": 77},
            "updated_at": "2026-11-20T10:00:00Z",
        },
    )
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone="+4915112345678")
        history = await uow.consent.history(contact.id)
    assert contact.consent_state is ConsentState.SUBSCRIBED and contact.country == "DE"
    assert contact.timezones == ("Europe/Berlin",)
    assert [e.source for e in history] == [ConsentSource.CHECKOUT]
    assert (
        await _count(
            container, "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'consent'"
        )
        == 0
    )


async def _stop(container, shop, contact_id, at: datetime | None = None) -> None:
    """The shopper texts STOP (what an inbound keyword records)."""
    async with container.uow.for_shop(shop.id) as uow:
        change = ConsentChange(
            contact_id, ConsentState.UNSUBSCRIBED, ConsentSource.KEYWORD, "shopper", occurred_at=at
        )
        await RecordConsent(container.clock)(uow, change)
        await uow.commit()


async def test_a_checkout_begun_before_a_stop_never_resubscribes_but_a_new_order_does(container):
    shop = await add_shop(container)
    checkout = {
        "token": "c1",
        "phone": PHONE,
        "buyer_accepts_sms_marketing": True,
        "customer": {"id": 77},
        "created_at": "2026-11-20T09:55:00Z",
    }
    await _deliver(
        container, shop, "checkouts/create", {**checkout, "updated_at": "2026-11-20T10:00:00Z"}
    )
    contact, _ = await _contact(container, shop)
    await _stop(container, shop, contact.id, at=datetime(2026, 11, 20, 12, tzinfo=UTC))

    # Late or repeated updates of that checkout still carry the box ticked before the STOP.
    for updated_at in ("2026-11-20T10:05:00Z", "2026-11-20T12:30:00Z"):
        late = {**checkout, "updated_at": updated_at}
        await _deliver(container, shop, "checkouts/update", late)
    contact, history = await _contact(container, shop)
    assert contact.consent_state is ConsentState.UNSUBSCRIBED
    assert verify_chain(history).valid

    # An order placed after the STOP with the box ticked is the shopper's new act.
    order = {**checkout, "id": 99001, "created_at": "2026-11-21T09:00:00Z"}
    await _deliver(container, shop, "orders/create", order)
    contact, history = await _contact(container, shop)
    assert contact.consent_state is ConsentState.SUBSCRIBED
    assert [e.source for e in history][-1] is ConsentSource.CHECKOUT


async def test_a_customer_update_racing_a_stop_never_writes_back_the_old_consent(
    container, monkeypatch
):
    shop = await add_shop(container)
    await _deliver(container, shop, "checkouts/create", {**_TICKED, "customer": {"id": 5}})
    find = SqlContacts.find
    stopping: list[asyncio.Task] = []

    async def find_while_a_stop_commits(self, **keys):
        found = await find(self, **keys)
        if found is not None and not stopping:
            # The shopper's STOP, on another connection, right after the sync's read. It
            # must wait for the sync's transaction; it is given a second to get in first.
            stopping.append(asyncio.ensure_future(_stop(container, shop, found.id)))
            await asyncio.wait(stopping, timeout=1.0)
        return found

    monkeypatch.setattr(SqlContacts, "find", find_while_a_stop_commits)
    update = {"id": 5, "phone": PHONE, "first_name": "Ada", "updated_at": "2026-11-21T10:00:00Z"}
    await _deliver(container, shop, "customers/update", update)
    monkeypatch.undo()
    await stopping[0]

    contact, history = await _contact(container, shop)
    assert (contact.first_name, history[-1].new_state) == ("Ada", ConsentState.UNSUBSCRIBED)
    assert contact.consent_state is ConsentState.UNSUBSCRIBED, "the STOP was written over"


async def test_a_number_spanning_zones_keeps_every_zone_it_spans(container):
    shop = await add_shop(container)
    await _deliver(container, shop, "customers/create", {"id": 9, "phone": "+61412345678"})
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone="+61412345678")
    # Quiet hours must hold in each: one zone (or the shop's) could be the shopper's night.
    assert {"Australia/Perth", "Australia/Sydney"} <= set(contact.timezones)
    assert len(contact.timezones) == 8


async def test_the_customer_address_places_a_contact_before_the_phone(container):
    shop = await add_shop(container)
    german_mobile = "+4915112345678"
    customer = {"id": 12, "phone": german_mobile, "updated_at": "2026-11-20T10:00:00Z"}

    async def zones_after(address: dict, updated_at: str) -> tuple[str, ...]:
        update = {**customer, "default_address": address, "updated_at": updated_at}
        await _deliver(container, shop, "customers/update", update)
        async with container.uow.for_shop(shop.id) as uow:
            return (await uow.contacts.find(shopify_customer_id=12)).timezones

    living_in_paris = await zones_after({"country_code": "FR"}, "2026-11-20T10:00:00Z")
    no_address_this_time = await zones_after({}, "2026-11-21T10:00:00Z")
    # The United States span many zones and no data of ours maps a state to one.
    moved_to_texas = await zones_after(
        {"country_code": "US", "province_code": "TX"}, "2026-11-22T10:00:00Z"
    )

    assert living_in_paris == no_address_this_time == ("Europe/Paris",)
    assert moved_to_texas == ("Europe/Berlin",), "an address abroad no longer places them"


async def test_a_zone_the_merchant_set_stays_whatever_shopify_says(container):
    shop = await add_shop(container)
    create = CreateContact(container.phones, container.clock, container.ids)
    async with container.uow.for_shop(shop.id) as uow:
        await create(uow, NewContact(phone=SHOPPER, timezone="America/Chicago"))
        await uow.commit()
    update = {
        "id": 31,
        "phone": SHOPPER,  # a San Francisco number
        "default_address": {"country_code": "FR"},
        "updated_at": "2026-11-20T10:00:00Z",
    }
    await _deliver(container, shop, "customers/update", update)
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone=SHOPPER)
    assert contact.shopify_customer_id == 31, "the update reached the contact"
    assert contact.timezones == ("America/Chicago",)


async def test_invalid_phone_creates_no_contact_and_the_event_still_completes(container):
    shop = await add_shop(container)
    await _deliver(container, shop, "customers/create", {"id": 5, "phone": "12"})
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=5)
    assert event.status is EventStatus.PROCESSED
    assert await _count(container, "SELECT count(*) FROM contacts") == 0


async def test_odd_customer_fields_cost_only_themselves_and_the_event_completes(container):
    shop = await add_shop(container)
    customer = {
        "id": 2**63,  # past a bigint
        "phone": "+870773111632",  # a number of no country
        "locale": "a-locale-far-too-long",
        "updated_at": "2026-11-20T10:00:00",  # no zone
    }
    await _deliver(container, shop, "customers/create", customer)
    async with container.uow.for_shop(shop.id) as uow:
        [event] = await uow.webhooks.find(status=None, topic=None, limit=5)
        contact = await uow.contacts.find(phone="+870773111632")
    assert event.status is EventStatus.PROCESSED
    assert contact.shopify_customer_id is None and contact.locale is None
    assert contact.country is None


async def test_a_name_from_shopify_with_control_characters_is_kept_out_like_an_email(container):
    # A name goes into texts, exports and the admin: the one the API refuses must not come
    # in through Shopify instead. Like an odd e-mail, it costs only itself.
    shop = await add_shop(container)
    base = {"id": 43, "phone": "+14155550178", "updated_at": "2026-11-20T10:00:00Z"}
    await _deliver(
        container, shop, "customers/create", {**base, "first_name": "Ada", "last_name": "Doe"}
    )
    await _deliver(
        container,
        shop,
        "customers/update",
        {
            **base,
            "first_name": "Ada\nReply STOP",
            "last_name": "\u001b[2JDoe",
            "email": "ada@example.com",
            "updated_at": "2026-11-21T10:00:00Z",
        },
    )
    async with container.uow.for_shop(shop.id) as uow:
        events = await uow.webhooks.find(status=None, topic=None, limit=5)
        contact = await uow.contacts.find(shopify_customer_id=43)
    assert {e.status for e in events} == {EventStatus.PROCESSED}
    assert (contact.first_name, contact.last_name) == ("Ada", "Doe"), "the names it had stay"
    assert contact.email == "ada@example.com", "the rest of the update is applied"


async def test_our_own_consent_change_is_pushed_to_shopify(database_url, data_dir):
    async with fake_shopify_container(database_url, data_dir) as (fake, container):
        shop = await install(fake, container)
        await _deliver(
            container, shop, "customers/create", {"id": 207119551, "phone": "+14155550132"}
        )
        async with container.uow.for_shop(shop.id) as uow:
            contact = await uow.contacts.find(shopify_customer_id=207119551)
            await RecordConsent(container.clock)(
                uow,
                ConsentChange(
                    contact_id=contact.id,
                    new_state=ConsentState.SUBSCRIBED,
                    source=ConsentSource.ADMIN,
                    actor="staff:42",
                    wording="Merchant recorded a paper form",
                ),
            )
            await uow.commit()
        await drain(container, "consent")
    [update] = fake.shops[shop.domain].consent_updates
    assert update["customerId"] == "gid://shopify/Customer/207119551"
    assert update["smsMarketingConsent"]["marketingState"] == "SUBSCRIBED"


async def _confirm_by_reply(http, container, shop, contact) -> None:
    reply = await http.post(
        f"/webhooks/mitto/inbound?token={CALLBACK_SECRET}",
        json={"from": SHOPPER[1:], "to": SHOP_NUMBER[1:], "text": "Y"},
    )
    assert reply.json()["keyword"] == "confirm"


async def _confirm_on_the_page(http, container, shop, contact) -> None:
    token = container.tokens.sign("confirm", str(contact.id), ttl_seconds=60)
    page = await http.post(proxy_path("/confirm", shop), data={"t": token})
    assert page.status_code == 200


async def _pending_customer(fake, container):
    """An installed shop that answers texts, and a Shopify customer waiting to confirm."""
    shop = await install(fake, container)
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.shops.get(shop.id)
        stored.settings = {"messaging": {"sender": SHOP_NUMBER}}
        await uow.shops.save(stored)
        await uow.commit()
    await _deliver(container, shop, "customers/create", {"id": 207119551, "phone": SHOPPER})
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(shopify_customer_id=207119551)
        pending = ConsentChange(
            contact_id=contact.id,
            new_state=ConsentState.PENDING,
            source=ConsentSource.STOREFRONT_FORM,
            actor="shopper",
            wording=WORDING,
        )
        await RecordConsent(container.clock)(uow, pending)
        await uow.commit()
    return shop, contact


@pytest.mark.parametrize(
    "confirm", [_confirm_by_reply, _confirm_on_the_page], ids=["reply Y", "confirm page"]
)
async def test_a_confirmed_double_opt_in_is_pushed_as_confirmed_opt_in(
    database_url, data_dir, confirm
):
    env = {"MITTO_WEBHOOK_SECRET": CALLBACK_SECRET}
    async with fake_shopify_container(database_url, data_dir, env=env) as (fake, container):
        shop, contact = await _pending_customer(fake, container)
        async with client(create_app(container)) as http:
            await confirm(http, container, shop, contact)
        await drain(container, "consent")
    consent = fake.shops[shop.domain].consent_updates[-1]["smsMarketingConsent"]
    assert consent["marketingState"] == "SUBSCRIBED"
    assert consent.get("marketingOptInLevel") == "CONFIRMED_OPT_IN", consent


async def test_ledger_is_append_only_for_the_service(container):
    shop = await add_shop(container)
    await _deliver(
        container,
        shop,
        "customers_marketing_consent/update",
        _consent_payload("subscribed", "2026-11-20T10:00:00Z"),
    )
    async with container.uow.for_shop(shop.id) as uow:
        with pytest.raises(DBAPIError, match="permission denied"):
            await uow.session.execute(text("UPDATE consent_events SET wording = 'forged'"))
    async with container.uow.for_shop(shop.id) as uow:
        with pytest.raises(DBAPIError, match="permission denied"):
            await uow.session.execute(text("DELETE FROM consent_events"))


async def test_shop_b_cannot_see_or_change_shop_a_contacts(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    await _deliver(
        container,
        shop_a,
        "customers_marketing_consent/update",
        _consent_payload("subscribed", "2026-11-20T10:00:00Z"),
    )
    async with container.uow.for_shop(shop_a.id) as uow:
        contact = await uow.contacts.find(phone="+14155550132")
    async with container.uow.for_shop(shop_b.id) as uow:
        assert await uow.contacts.find(phone="+14155550132") is None
        assert await uow.contacts.get(contact.id) is None
        assert await uow.consent.history(contact.id) == []
        raw = await uow.session.scalar(text("SELECT count(*) FROM contacts"))
        updated = await uow.session.execute(
            text("UPDATE contacts SET tags = '{hacked}' WHERE id = :id"), {"id": contact.id}
        )
    assert raw == 0 and updated.rowcount == 0
