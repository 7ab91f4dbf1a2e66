"""QueueMessages on real Postgres: every gate records why it stopped a message, quiet
hours defer and never drop, credits are reserved exactly for what will be sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from application.billing.debit_wallet import DebitWallet
from application.messaging.queue_messages import OutgoingMessage, QueueMessages
from domain.billing import estimate
from domain.consent import ConsentState
from domain.contacts import Contact
from domain.messages import DEFAULT_FOOTER, MessageCategory, MessageStatus, compose
from tests.conftest import add_shop
from tests.support.messaging import (
    FixedClock,
    add_contacts,
    add_perth_and_sydney_contact,
    fund,
    phone_number,
    refuse_number,
    set_messaging,
    set_quiet_hours,
)

pytestmark = pytest.mark.usefixtures("clean_db")

NOON_UTC = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def _queue(container, at: datetime = NOON_UTC) -> QueueMessages:
    return QueueMessages(FixedClock(at), container.ids, container.price_list, DebitWallet())


def _marketing(contact, key: str | None = None, **fields) -> OutgoingMessage:
    return OutgoingMessage(
        text="Summer sale: 20% off everything",
        category=fields.pop("category", MessageCategory.MARKETING),
        source="test",
        idempotency_key=key or f"test:{uuid.uuid4()}",
        contact_id=contact.id,
        **fields,
    )


async def _send(container, shop, requests, at: datetime = NOON_UTC):
    async with container.uow.for_shop(shop.id) as uow:
        fresh = await uow.shops.get(shop.id)
        results = await _queue(container, at)(uow, fresh, requests)
        await uow.commit()
    return results


async def _jobs(container, shop) -> list[tuple[list[str], datetime | None]]:
    async with container.uow.maintenance() as uow:
        rows = await uow.session.execute(
            text(
                "SELECT args, scheduled_at FROM procrastinate_jobs "
                "WHERE task_name = 'messages:deliver' AND args->>'shop_id' = :shop"
            ),
            {"shop": str(shop.id)},
        )
        return [(args["message_ids"], at) for args, at in rows]


async def _wallet(container, shop) -> tuple[int, int]:
    async with container.uow.for_shop(shop.id) as uow:
        wallet = await uow.wallet.balance()
        return wallet.balance, wallet.reserved


async def test_an_unsubscribed_contact_is_blocked_recorded_and_not_charged(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    [gone] = await add_contacts(container, shop, [phone_number(1)], state=ConsentState.UNSUBSCRIBED)
    [pending] = await add_contacts(container, shop, [phone_number(2)], state=ConsentState.PENDING)

    results = await _send(container, shop, [_marketing(gone), _marketing(pending)])

    assert [r.status for r in results] == [MessageStatus.BLOCKED_CONSENT] * 2
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.messages.get(results[0].message_id)
        history = await uow.messages.history(results[0].message_id)
    assert stored.status is MessageStatus.BLOCKED_CONSENT and "unsubscribed" in stored.error
    assert [h.status for h in history] == [MessageStatus.BLOCKED_CONSENT]
    assert await _wallet(container, shop) == (100, 0)
    assert await _jobs(container, shop) == []


def _entered(status: MessageStatus) -> float:
    labels = {"status": status.value, "category": MessageCategory.MARKETING.value}
    return REGISTRY.get_sample_value("blossom_messages_total", labels) or 0.0


async def test_texts_a_gate_stops_are_counted_once_committed_and_never_when_rolled_back(
    container,
):
    shop = await add_shop(container)
    [gone] = await add_contacts(container, shop, [phone_number(1)], state=ConsentState.UNSUBSCRIBED)
    before = _entered(MessageStatus.BLOCKED_CONSENT)
    async with container.uow.for_shop(shop.id) as uow:
        await _queue(container)(uow, await uow.shops.get(shop.id), [_marketing(gone)])
        # Left without a commit: rolled back, so nothing was queued or blocked.
    assert _entered(MessageStatus.BLOCKED_CONSENT) == before

    await _send(container, shop, [_marketing(gone), _marketing(gone)])

    assert _entered(MessageStatus.BLOCKED_CONSENT) == before + 2


async def test_a_contact_that_does_not_exist_is_recorded_as_blocked_not_an_error(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    [real] = await add_contacts(container, shop, [phone_number(5)])
    ghost = Contact(id=uuid.uuid4(), shop_id=shop.id, phone=None)

    results = await _send(container, shop, [_marketing(ghost), _marketing(real)])

    assert [r.status for r in results] == [MessageStatus.BLOCKED_CONSENT, MessageStatus.QUEUED]


async def test_transactional_texts_reach_anyone_who_has_not_opted_out(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    [unknown] = await add_contacts(container, shop, [phone_number(3)], state=ConsentState.UNKNOWN)
    [gone] = await add_contacts(container, shop, [phone_number(4)], state=ConsentState.UNSUBSCRIBED)
    order = MessageCategory.TRANSACTIONAL

    results = await _send(
        container, shop, [_marketing(unknown, category=order), _marketing(gone, category=order)]
    )

    assert [r.status for r in results] == [MessageStatus.QUEUED, MessageStatus.BLOCKED_CONSENT]


async def test_a_number_the_provider_refused_gets_no_text_of_any_kind_and_no_charge(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    [refused, fine] = await add_contacts(container, shop, [phone_number(6), phone_number(7)])
    await refuse_number(container, shop, refused.id, refused.phone)
    requests = [_marketing(refused, category=category) for category in MessageCategory]

    *blocked, queued = await _send(container, shop, [*requests, _marketing(fine)])

    assert [r.status for r in blocked] == [MessageStatus.BLOCKED_INVALID_NUMBER] * 3
    assert queued.status is MessageStatus.QUEUED
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.messages.get(blocked[0].message_id)
        history = await uow.messages.history(blocked[0].message_id)
        cost = (await uow.messages.get(queued.message_id)).credits
    assert stored.error == "the provider refused this number"
    assert [h.status for h in history] == [MessageStatus.BLOCKED_INVALID_NUMBER]
    assert await _wallet(container, shop) == (100 - cost, cost), "only the good number reserves"
    [(ids, _)] = await _jobs(container, shop)
    assert ids == [str(queued.message_id)]


@pytest.mark.parametrize(
    ("zone", "local_now", "local_expected"),
    [
        # East of UTC: 22:30 in Tokyo is 13:30 UTC.
        ("Asia/Tokyo", datetime(2026, 6, 10, 22, 30), datetime(2026, 6, 11, 8, 0)),
        # West of UTC.
        ("America/Los_Angeles", datetime(2026, 6, 10, 22, 30), datetime(2026, 6, 11, 8, 0)),
        # The night New York moves its clocks forward (8 March 2026): 08:00 EDT = 12:00 UTC.
        ("America/New_York", datetime(2026, 3, 7, 22, 30), datetime(2026, 3, 8, 8, 0)),
    ],
)
async def test_marketing_at_2230_local_is_scheduled_for_0800_local_next_morning(
    container, zone, local_now, local_expected
):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    # Numbers outside the US so no state rule applies; the contact's zone decides.
    [contact] = await add_contacts(container, shop, ["+447700900123"], timezone=zone, country="GB")
    now = local_now.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    expected = local_expected.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)

    [result] = await _send(container, shop, [_marketing(contact)], at=now)

    assert result.status is MessageStatus.QUEUED
    assert result.scheduled_at == expected
    [(ids, job_at)] = await _jobs(container, shop)
    assert ids == [str(result.message_id)] and job_at == expected
    assert (await _wallet(container, shop))[1] > 0, "credits are held for the deferred text"


async def test_a_number_spanning_zones_waits_until_the_window_is_open_in_all_of_them(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    contact = await add_perth_and_sydney_contact(container, shop)
    sydney = ZoneInfo("Australia/Sydney")
    # 09:30 in a Sydney summer is 06:30 in Perth; 08:00 there is 11:00 in Sydney.
    morning = datetime(2026, 1, 14, 9, 30, tzinfo=sydney).astimezone(UTC)

    [result] = await _send(container, shop, [_marketing(contact)], at=morning)

    assert result.scheduled_at == datetime(2026, 1, 14, 11, 0, tzinfo=sydney)
    [(_, job_at)] = await _jobs(container, shop)
    assert job_at == result.scheduled_at


async def test_a_contact_nothing_places_keeps_the_shops_quiet_hours(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    async with container.uow.for_shop(shop.id) as uow:
        tokyo_shop = await uow.shops.get(shop.id, for_update=True)
        tokyo_shop.timezone = "Asia/Tokyo"
        await uow.shops.save(tokyo_shop)
        await uow.commit()
    [contact] = await add_contacts(container, shop, ["+870773111632"], timezone=None)
    tokyo = ZoneInfo("Asia/Tokyo")
    night = datetime(2026, 6, 10, 22, 30, tzinfo=tokyo).astimezone(UTC)  # 13:30 UTC

    [result] = await _send(container, shop, [_marketing(contact)], at=night)

    assert result.scheduled_at == datetime(2026, 6, 11, 8, 0, tzinfo=tokyo)


async def test_zones_with_no_minute_in_common_do_not_fail_the_batch(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    await set_quiet_hours(container, shop, start="15:00", end="10:00")
    [torn] = await add_contacts(
        container,
        shop,
        ["+447700900131"],
        timezone=None,
        phone_timezones=["Europe/London", "Pacific/Auckland"],  # twelve hours apart
        country="GB",
    )
    [london] = await add_contacts(
        container, shop, ["+447700900132"], timezone="Europe/London", country="GB"
    )

    results = await _send(container, shop, [_marketing(torn), _marketing(london)])

    # The claim, which checks again, fails the first with the reason and releases it.
    assert [r.status for r in results] == [MessageStatus.QUEUED] * 2
    assert results[1].scheduled_at is None  # 13:00 in London


async def test_an_order_update_waits_out_quiet_hours_unless_the_shop_lets_it_through(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    [contact] = await add_contacts(
        container, shop, ["+447700900127"], timezone="Europe/London", country="GB"
    )
    london = ZoneInfo("Europe/London")
    night = datetime(2026, 6, 10, 22, 30, tzinfo=london).astimezone(UTC)
    order = MessageCategory.TRANSACTIONAL

    [held] = await _send(container, shop, [_marketing(contact, category=order)], at=night)
    await set_messaging(container, shop, transactional_bypass_quiet_hours=True)
    [let_through] = await _send(container, shop, [_marketing(contact, category=order)], at=night)

    assert held.scheduled_at == datetime(2026, 6, 11, 8, 0, tzinfo=london)
    assert let_through.status is MessageStatus.QUEUED and let_through.scheduled_at is None


async def test_inside_the_window_a_marketing_text_goes_at_once(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    [contact] = await add_contacts(container, shop, ["+447700900124"], timezone="Europe/London")

    [result] = await _send(container, shop, [_marketing(contact)])  # 13:00 in London

    assert result.status is MessageStatus.QUEUED and result.scheduled_at is None
    [(_, job_at)] = await _jobs(container, shop)
    assert job_at is None  # runnable at once


async def test_the_frequency_cap_stops_the_fourth_marketing_text_in_a_day(container):
    shop = await add_shop(container)
    await set_messaging(container, shop, smart_sending_hours=0)
    await fund(container, shop, 1000)
    [contact] = await add_contacts(
        container, shop, ["+447700900125"], timezone="Europe/London", country="GB"
    )

    first = await _send(container, shop, [_marketing(contact) for _ in range(2)])
    later = await _send(
        container, shop, [_marketing(contact) for _ in range(2)], at=NOON_UTC + timedelta(hours=1)
    )
    receipt = await _send(
        container,
        shop,
        [_marketing(contact, category=MessageCategory.TRANSACTIONAL)],
        at=NOON_UTC + timedelta(hours=2),
    )
    next_day = await _send(
        container, shop, [_marketing(contact)], at=NOON_UTC + timedelta(hours=25)
    )

    statuses = [r.status for r in first + later + receipt + next_day]
    assert statuses == [MessageStatus.QUEUED] * 3 + [MessageStatus.BLOCKED_CAP] + [
        MessageStatus.QUEUED,  # transactional texts are not capped
        MessageStatus.QUEUED,  # the window rolled on
    ]


async def test_a_florida_number_gets_three_marketing_texts_a_day_whatever_the_shop_cap(
    container,
):
    shop = await add_shop(container)
    await set_messaging(container, shop, cap_count=10, smart_sending_hours=0)
    await fund(container, shop, 1000)
    [florida] = await add_contacts(
        container, shop, ["+13055550123"], timezone="America/New_York", country="US"
    )
    [london] = await add_contacts(
        container, shop, ["+447700900128"], timezone="Europe/London", country="GB"
    )
    afternoon = NOON_UTC + timedelta(hours=4)  # 12:00 in Miami, 17:00 in London

    def both():
        return [_marketing(contact) for _ in range(2) for contact in (florida, london)]

    first = await _send(container, shop, both(), at=afternoon)
    later = await _send(container, shop, both(), at=afternoon + timedelta(hours=1))

    statuses = [r.status for r in first + later]
    assert statuses[0::2] == [MessageStatus.QUEUED] * 3 + [MessageStatus.BLOCKED_CAP]
    assert statuses[1::2] == [MessageStatus.QUEUED] * 4, "the shop's cap of 10 holds elsewhere"


async def test_smart_sending_skips_a_second_marketing_text_within_24_hours_for_good(container):
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    [contact] = await add_contacts(
        container, shop, ["+447700900129"], timezone="Europe/London", country="GB"
    )
    order, system = MessageCategory.TRANSACTIONAL, MessageCategory.SYSTEM
    first = await _send(container, shop, [_marketing(contact), _marketing(contact)])
    after_first = await _wallet(container, shop)
    later = await _send(
        container,
        shop,
        [
            _marketing(contact, key="campaign:2"),
            _marketing(contact, category=order),
            _marketing(contact, category=system),
        ],
        at=NOON_UTC + timedelta(hours=23),
    )
    again = await _send(
        container, shop, [_marketing(contact, key="campaign:2")], at=NOON_UTC + timedelta(hours=25)
    )
    next_day = await _send(
        container, shop, [_marketing(contact)], at=NOON_UTC + timedelta(hours=25)
    )

    assert [r.status for r in first + later + again + next_day] == [
        MessageStatus.QUEUED,
        MessageStatus.SKIPPED,  # the same batch
        MessageStatus.SKIPPED,  # 23 hours later
        MessageStatus.QUEUED,  # order updates and system texts are never held back
        MessageStatus.QUEUED,
        MessageStatus.SKIPPED,  # its key asked again: it stays skipped, not re-queued
        MessageStatus.QUEUED,  # over 24 hours after the one that went
    ]
    assert again[0].replay and again[0].message_id == later[0].message_id
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.messages.get(first[1].message_id)
        history = await uow.messages.history(first[1].message_id)
    assert stored.status is MessageStatus.SKIPPED and "smart sending" in stored.error
    assert [h.status for h in history] == [MessageStatus.SKIPPED]
    sent = compose(_marketing(contact).text, MessageCategory.MARKETING, shop.name, DEFAULT_FOOTER)
    cost = estimate(sent, "GB", container.price_list).credits
    assert after_first == (1000 - cost, cost), "the skipped text holds no credits"
    results = first + later + next_day
    queued = {str(r.message_id) for r in results if r.status is MessageStatus.QUEUED}
    assert {i for ids, _ in await _jobs(container, shop) for i in ids} == queued


async def test_a_shop_may_shorten_smart_sending_or_turn_it_off(container):
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    [contact] = await add_contacts(
        container, shop, ["+447700900130"], timezone="Europe/London", country="GB"
    )
    await set_messaging(container, shop, smart_sending_hours=2)
    shortened = [
        await _send(container, shop, [_marketing(contact)], at=NOON_UTC + timedelta(hours=h))
        for h in (0, 1, 3)
    ]
    await set_messaging(container, shop, smart_sending_hours=0)
    off = await _send(container, shop, [_marketing(contact)], at=NOON_UTC + timedelta(hours=3))

    assert [r.status for [r] in shortened] + [r.status for r in off] == [
        MessageStatus.QUEUED,
        MessageStatus.SKIPPED,
        MessageStatus.QUEUED,
        MessageStatus.QUEUED,  # the shop's cap of 3 a day is all that is left
    ]


async def test_a_dedupe_key_is_unique_within_its_window(container):
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    [contact] = await add_contacts(container, shop, ["+447700900126"], timezone="Europe/London")
    order = MessageCategory.TRANSACTIONAL

    def reminder():
        return _marketing(contact, category=order, dedupe_key="automation:checkout:abc")

    same_batch = await _send(container, shop, [reminder(), reminder()])
    within = await _send(container, shop, [reminder()], at=NOON_UTC + timedelta(hours=47))
    after = await _send(container, shop, [reminder()], at=NOON_UTC + timedelta(hours=49))

    assert [r.status for r in same_batch + within + after] == [
        MessageStatus.QUEUED,
        MessageStatus.DUPLICATE,
        MessageStatus.DUPLICATE,
        MessageStatus.QUEUED,
    ]


async def test_without_credits_the_rest_of_a_batch_is_blocked_and_recorded(container):
    shop = await add_shop(container)
    phones = [f"+4477009001{n:02d}" for n in range(30, 33)]
    contacts = await add_contacts(container, shop, phones, timezone="Europe/London", country="GB")
    requests = [_marketing(c) for c in contacts]
    text_sent = compose(requests[0].text, MessageCategory.MARKETING, shop.name, DEFAULT_FOOTER)
    cost = estimate(text_sent, "GB", container.price_list).credits
    await fund(container, shop, cost)

    results = await _send(container, shop, requests)

    assert [r.status for r in results] == [
        MessageStatus.QUEUED,
        MessageStatus.BLOCKED_INSUFFICIENT_CREDITS,
        MessageStatus.BLOCKED_INSUFFICIENT_CREDITS,
    ]
    assert await _wallet(container, shop) == (0, cost)
    [(ids, _)] = await _jobs(container, shop)
    assert ids == [str(results[0].message_id)]


async def test_the_same_idempotency_key_queues_one_message(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    [contact] = await add_contacts(container, shop, ["+447700900140"], timezone="Europe/London")

    first = await _send(container, shop, [_marketing(contact, key="order:1:confirmation")])
    again = await _send(container, shop, [_marketing(contact, key="order:1:confirmation")])

    assert first[0].message_id == again[0].message_id
    assert (first[0].replay, again[0].replay) == (False, True)
    gone = (
        await add_contacts(container, shop, ["+447700900143"], state=ConsentState.UNSUBSCRIBED)
    )[0]
    blocked = await _send(container, shop, [_marketing(gone, key="order:2:confirmation")])
    replayed = await _send(container, shop, [_marketing(gone, key="order:2:confirmation")])
    assert replayed[0].status is blocked[0].status is MessageStatus.BLOCKED_CONSENT, "as stored"
    assert len(await _jobs(container, shop)) == 1


async def test_a_marketing_text_names_the_brand_and_says_how_to_stop(container):
    shop = await add_shop(container, name="blossomtea")
    await fund(container, shop, 100)
    [contact] = await add_contacts(container, shop, ["+447700900141"], timezone="Europe/London")

    [result] = await _send(container, shop, [_marketing(contact)])

    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.messages.get(result.message_id)
    assert stored.text == "blossomtea: Summer sale: 20% off everything\nReply STOP to opt out"


async def test_shop_b_cannot_queue_to_or_read_shop_a_contacts(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    await fund(container, shop_a, 100)
    await fund(container, shop_b, 100)
    [contact_a] = await add_contacts(container, shop_a, ["+447700900142"])

    [result_b] = await _send(container, shop_b, [_marketing(contact_a)])
    [result_a] = await _send(container, shop_a, [_marketing(contact_a)])

    assert result_b.status is MessageStatus.BLOCKED_CONSENT  # shop B sees no such contact
    async with container.uow.for_shop(shop_b.id) as uow:
        assert await uow.messages.get(result_a.message_id) is None
        assert [m.id for m in await uow.messages.page(limit=10)] == [result_b.message_id]
