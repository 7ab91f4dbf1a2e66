"""The delivery job against a fake Mitto on loopback: sent once, charged once, failures
retried or refunded, interrupted sends looked up before any resend."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from application.billing.debit_wallet import DebitWallet
from application.contacts.record_consent import ConsentChange, RecordConsent
from application.messaging.queue_messages import OutgoingMessage, QueueMessages
from application.messaging.record_delivery_report import DeliveryReportIn
from application.ports import OutboundSms
from application.tasks import DELIVER_MESSAGES
from domain.consent import ConsentSource, ConsentState
from domain.messages import MessageCategory, MessageStatus
from domain.shops import ShopStatus
from infrastructure.mitto.gateway import MittoSmsGateway
from tests.conftest import add_shop
from tests.support.messaging import (
    MITTO_KEY,
    FixedClock,
    add_contacts,
    add_perth_and_sydney_contact,
    fake_mitto_container,
    fund,
    mitto_env,
    set_messaging,
    set_quiet_hours,
)
from tests.support.processes import blossom, child_env
from tests.support.queue import drain
from tests.support.settings import make_environ

pytestmark = pytest.mark.usefixtures("clean_db")

FUNDS = 1000


async def _queue(container, shop, contacts, category=MessageCategory.TRANSACTIONAL):
    requests = [
        OutgoingMessage(
            text=f"Your order {n} has shipped",
            category=category,
            source="test",
            idempotency_key=f"test:{uuid.uuid4()}",
            contact_id=c.id,
        )
        for n, c in enumerate(contacts)
    ]
    async with container.uow.for_shop(shop.id) as uow:
        results = await container.queue_messages()(uow, await uow.shops.get(shop.id), requests)
        await uow.commit()
    return [r.message_id for r in results]


async def _messages(container, shop, ids):
    async with container.uow.for_shop(shop.id) as uow:
        return [await uow.messages.get(i) for i in ids]


async def _wallet(container, shop) -> tuple[int, int]:
    async with container.uow.for_shop(shop.id) as uow:
        wallet = await uow.wallet.balance()
        assert await uow.wallet.balanced()
        return wallet.balance, wallet.reserved


async def _setup(container, phones):
    shop = await add_shop(container)
    # These are order updates, due now whatever the hour in the recipients' zone.
    await set_messaging(container, shop, transactional_bypass_quiet_hours=True)
    await fund(container, shop, FUNDS)
    contacts = await add_contacts(container, shop, phones)
    return shop, contacts


async def _deliver_jobs(container, shop) -> list[tuple[list[str], datetime | None]]:
    async with container.uow.maintenance() as uow:
        rows = await uow.session.execute(
            text(
                "SELECT args, scheduled_at FROM procrastinate_jobs WHERE status = 'todo' "
                "AND task_name = 'messages:deliver' AND args->>'shop_id' = :shop"
            ),
            {"shop": str(shop.id)},
        )
        return [(args["message_ids"], at) for args, at in rows]


async def test_queued_messages_are_sent_once_captured_and_marked_sent(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550101", "+14155550102", "+447700900150"])
        ids = await _queue(container, shop, contacts)
        cost = sum(m.credits for m in await _messages(container, shop, ids))

        await drain(container, "messages")

        sent = await _messages(container, shop, ids)
        assert [m.status for m in sent] == [MessageStatus.SENT] * 3
        assert [fake.accepted_by_reference[str(i)] for i in ids] == [1, 1, 1]
        assert [m.provider_id for m in sent] == [fake.by_reference(str(i)).provider_id for i in ids]
        accepted = fake.by_reference(str(ids[0]))
        assert (accepted.to, accepted.sender, accepted.type) == ("14155550101", "Blossom", "GSM")
        assert await _wallet(container, shop) == (FUNDS - cost, 0)
        async with container.uow.for_shop(shop.id) as uow:
            history = await uow.messages.history(ids[0])
        assert [h.status for h in history] == [MessageStatus.QUEUED, MessageStatus.SENT]


async def test_a_stop_after_queueing_blocks_the_waiting_text_and_releases_its_credits(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550111", "+14155550112"])
        stays, leaves = await _queue(container, shop, contacts)
        kept_cost = (await _messages(container, shop, [stays]))[0].credits
        async with container.uow.for_shop(shop.id) as uow:
            await RecordConsent(container.clock)(
                uow,
                ConsentChange(
                    contacts[1].id, ConsentState.UNSUBSCRIBED, ConsentSource.KEYWORD, "sms"
                ),
            )
            await uow.commit()

        await drain(container, "messages")

        sent, blocked = await _messages(container, shop, [stays, leaves])
        assert sent.status is MessageStatus.SENT
        assert blocked.status is MessageStatus.BLOCKED_CONSENT and "unsubscribed" in blocked.error
        assert str(leaves) not in fake.accepted_by_reference
        assert await _wallet(container, shop) == (FUNDS - kept_cost, 0)


async def _queue_marketing_at(container, shop, contact, at: datetime) -> uuid.UUID:
    queue = QueueMessages(FixedClock(at), container.ids, container.price_list, DebitWallet())
    request = OutgoingMessage(
        text="Summer sale: 20% off",
        category=MessageCategory.MARKETING,
        source="test",
        idempotency_key=f"test:{uuid.uuid4()}",
        contact_id=contact.id,
    )
    async with container.uow.for_shop(shop.id) as uow:
        [queued] = await queue(uow, await uow.shops.get(shop.id), [request])
        await uow.commit()
    return queued.message_id


def _zone_where_it_is_night(now: datetime) -> str:
    """A fixed-offset zone whose local time is now between 01:00 and 05:00."""
    for offset in range(-12, 15):
        if 1 <= (now.hour + offset) % 24 <= 5:
            return f"Etc/GMT{-offset:+d}"  # the Etc names count the other way
    raise AssertionError("every hour has such a zone")


async def test_a_marketing_text_claimed_in_the_recipients_night_waits_for_the_morning(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop = await add_shop(container)
        await fund(container, shop, FUNDS)
        now = container.clock.now()
        [contact] = await add_contacts(
            container, shop, ["+14155550115"], timezone=_zone_where_it_is_night(now)
        )
        # Queued the afternoon before (allowed then), then delayed: a parked key, retries.
        message_id = await _queue_marketing_at(container, shop, contact, now - timedelta(hours=12))

        await drain(container, "messages")

        [waiting] = await _messages(container, shop, [message_id])
        assert waiting.status is MessageStatus.QUEUED and "quiet hours" in waiting.error
        assert now < waiting.scheduled_at < now + timedelta(hours=8)
        assert fake.calls["POST /sms"] == 0
        assert [at for _, at in await _deliver_jobs(container, shop)] == [waiting.scheduled_at]
        assert (await _wallet(container, shop))[1] == waiting.credits, "still reserved"


async def test_a_claim_before_eight_in_any_zone_of_the_number_waits_for_the_last_morning(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop = await add_shop(container)
        await fund(container, shop, FUNDS)
        contact = await add_perth_and_sydney_contact(container, shop)
        sydney = ZoneInfo("Australia/Sydney")
        noon = datetime(2026, 1, 14, 12, 0, tzinfo=sydney)  # 09:00 in Perth: goes at once
        message_id = await _queue_marketing_at(container, shop, contact, noon)
        # Delayed overnight (an outage, a parked key) and claimed at 09:30 in Sydney,
        # which is 06:30 in Perth.
        container.clock = FixedClock(datetime(2026, 1, 15, 9, 30, tzinfo=sydney))

        await container.deliver_messages()(shop.id, [message_id])

        [waiting] = await _messages(container, shop, [message_id])
        assert waiting.status is MessageStatus.QUEUED and "quiet hours" in waiting.error
        assert waiting.scheduled_at == datetime(2026, 1, 15, 11, 0, tzinfo=sydney)
        assert fake.calls["POST /sms"] == 0


async def test_a_text_no_minute_of_which_suits_every_zone_fails_at_its_claim_and_is_released(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop = await add_shop(container)
        await fund(container, shop, FUNDS)
        await set_quiet_hours(container, shop, start="15:00", end="10:00")
        [contact] = await add_contacts(
            container,
            shop,
            ["+447700900133"],
            timezone=None,
            phone_timezones=["Europe/London", "Pacific/Auckland"],  # twelve hours apart
            country="GB",
        )
        at = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
        message_id = await _queue_marketing_at(container, shop, contact, at)
        container.clock = FixedClock(at)

        await container.deliver_messages()(shop.id, [message_id])

        [failed] = await _messages(container, shop, [message_id])
        assert failed.status is MessageStatus.FAILED and "never overlap" in failed.error
        assert fake.calls["POST /sms"] == 0
        assert await _wallet(container, shop) == (FUNDS, 0)


async def test_an_invalid_number_fails_for_good_and_its_credits_come_back(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550103"])
        fake.reject_numbers({"14155550103"})
        [message_id] = await _queue(container, shop, contacts)

        await drain(container, "messages")

        [failed] = await _messages(container, shop, [message_id])
        assert (failed.status, failed.error) == (MessageStatus.FAILED, "invalid_number")
        assert fake.calls["POST /sms"] == 1, "a permanent refusal is not retried"
        assert await _wallet(container, shop) == (FUNDS, 0)


async def _contact(container, shop, contact_id):
    async with container.uow.for_shop(shop.id) as uow:
        return await uow.contacts.get(contact_id)


async def test_a_number_refused_as_invalid_is_marked_and_never_sent_to_again(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, [contact] = await _setup(container, ["+14155550104"])
        fake.reject_numbers({"14155550104"})
        await _queue(container, shop, [contact])
        await drain(container, "messages")

        [later] = await _queue(container, shop, [contact])
        await drain(container, "messages")

        [blocked] = await _messages(container, shop, [later])
        assert blocked.status is MessageStatus.BLOCKED_INVALID_NUMBER
        assert fake.calls["POST /sms"] == 1, "the refused number was texted again"
        assert (await _contact(container, shop, contact.id)).phone_invalid_at is not None
        assert await _wallet(container, shop) == (FUNDS, 0)


async def test_texts_queued_before_a_refusal_of_their_number_are_not_sent(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, [contact] = await _setup(container, ["+14155550108"])
        fake.reject_numbers({"14155550108"})
        first, waiting = await _queue(container, shop, [contact, contact])

        await container.deliver_messages()(shop.id, [first])  # refused: the number is marked
        await container.deliver_messages()(shop.id, [waiting])  # queued before the mark

        [blocked] = await _messages(container, shop, [waiting])
        assert blocked.status is MessageStatus.BLOCKED_INVALID_NUMBER
        assert fake.calls["POST /sms"] == 1
        assert await _wallet(container, shop) == (FUNDS, 0)


async def test_a_refusal_marks_only_the_number_refused_not_one_the_contact_has_since(
    database_url, data_dir, monkeypatch
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, (kept, changed) = await _setup(container, ["+14155550105", "+14155550106"])
        fake.reject_numbers({"14155550105", "14155550106"})
        ids = await _queue(container, shop, [kept, changed])
        send = container.sms_gateway.send

        async def send_while_the_number_changes(sms: OutboundSms):
            if sms.reference == str(ids[1]):  # claimed for the old number, then changed
                async with container.uow.for_shop(shop.id) as uow:
                    contact = await uow.contacts.get(changed.id, for_update=True)
                    contact.phone = "+14155550107"
                    await uow.contacts.save(contact, container.clock.now())
                    await uow.commit()
            return await send(sms)

        monkeypatch.setattr(container.sms_gateway, "send", send_while_the_number_changes)
        await container.deliver_messages()(shop.id, ids)

        assert (await _contact(container, shop, kept.id)).phone_invalid_at is not None
        moved = await _contact(container, shop, changed.id)
        assert (moved.phone, moved.phone_invalid_at) == ("+14155550107", None)
        [to_new_number] = await _queue(container, shop, [moved])
        [queued] = await _messages(container, shop, [to_new_number])
        assert queued.status is MessageStatus.QUEUED


async def test_a_refused_key_parks_texts_without_spending_attempts_or_doubling_jobs(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550114"])
        [waiting] = await _queue(container, shop, contacts)
        fake.fail_next(401, count=100)  # until an operator fixes the key

        for _ in range(3):  # the job, then its retries (it fails loudly) run at once
            await drain(container, "messages")
            async with container.uow.maintenance() as uow:
                await uow.session.execute(
                    text(
                        "UPDATE procrastinate_jobs SET scheduled_at = now() "
                        "WHERE status = 'todo' AND task_name = 'messages:deliver' AND attempts > 0"
                    )
                )
                await uow.commit()

        [parked] = await _messages(container, shop, [waiting])
        assert (parked.status, parked.error) == (MessageStatus.QUEUED, "unauthorized")
        assert parked.attempts == 1, "retries of the failed job found nothing due"
        assert parked.scheduled_at > container.clock.now() + timedelta(minutes=9)
        assert fake.calls["POST /sms"] == 1
        assert len(await _deliver_jobs(container, shop)) == 1, "one follow-up, not a crowd"


class _ReportedBeforeSettling:
    """The real gateway, except that a report on one text arrives, and is recorded, before
    the delivery job settles its chunk: Mitto's callbacks are fast."""

    def __init__(self, container, reference: str, word: str = "REJECTD") -> None:
        self._inner = container.sms_gateway
        self._container = container
        self._reference = reference
        self._word = word

    async def send(self, sms: OutboundSms):
        receipt = await self._inner.send(sms)
        if sms.reference == self._reference:
            report = DeliveryReportIn(
                receipt.provider_id, sms.reference, self._word, "34", None, "{}"
            )
            await self._container.record_delivery_report()(report)
        return receipt

    async def lookup(self, reference: str):
        return await self._inner.lookup(reference)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_text_settled_by_its_report_first_is_not_billed_again_by_the_send(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550301", "+14155550302"])
        rejected, invalid = await _queue(container, shop, contacts)
        fake.reject_numbers({"14155550302"})
        container.__dict__["sms_gateway"] = _ReportedBeforeSettling(container, str(rejected))

        first = await container.deliver_messages()(shop.id, [rejected])
        await container.deliver_messages()(shop.id, [invalid])

        first_message, second_message = await _messages(container, shop, [rejected, invalid])
        assert (first_message.status, second_message.status) == (
            MessageStatus.REJECTED,
            MessageStatus.FAILED,
        )
        # Later reports may name only Mitto's id: it is kept though the report won the race.
        assert first_message.provider_id == fake.by_reference(str(rejected)).provider_id
        # Neither was delivered: both reservations come back, none is also captured.
        assert await _wallet(container, shop) == (FUNDS, 0)
        assert not first.statuses, "the report counted it; the send must not count it again"


async def test_an_unreadable_report_during_the_send_leaves_it_to_the_settle(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        shop, contacts = await _setup(container, ["+14155550303"])
        [message_id] = await _queue(container, shop, contacts)
        reports = _ReportedBeforeSettling(container, str(message_id), word="SCHEDULD")
        container.__dict__["sms_gateway"] = reports

        await container.deliver_messages()(shop.id, [message_id])

        [message] = await _messages(container, shop, [message_id])
        # Mitto answered with its id: the text went out and is billed, not left unknown
        # for the sweep to expire and release.
        assert message.status is MessageStatus.SENT
        assert await _wallet(container, shop) == (FUNDS - message.credits, 0)


async def test_server_errors_are_retried_and_the_text_sent_once(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550104"])
        fake.fail_next(503, 2)
        [message_id] = await _queue(container, shop, contacts)

        await drain(container, "messages")

        [sent] = await _messages(container, shop, [message_id])
        assert sent.status is MessageStatus.SENT
        assert fake.calls["POST /sms"] == 3 and fake.accepted_by_reference[str(message_id)] == 1


async def test_a_provider_outage_requeues_the_message_with_a_later_attempt(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550105"])
        fake.fail_next(503, 100)
        [message_id] = await _queue(container, shop, contacts)

        await drain(container, "messages")

        [waiting] = await _messages(container, shop, [message_id])
        assert (waiting.status, waiting.attempts) == (MessageStatus.QUEUED, 1)
        [(ids, at)] = await _deliver_jobs(container, shop)
        assert ids == [str(message_id)] and at > datetime.now(UTC)
        assert (await _wallet(container, shop))[1] == waiting.credits, "still reserved"


@pytest.mark.parametrize(
    ("tried", "status"), [(10, MessageStatus.QUEUED), (11, MessageStatus.FAILED)]
)
async def test_an_outage_fails_a_text_only_on_its_twelfth_attempt(
    database_url, data_dir, tried, status
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550116"])
        fake.fail_next(503, 100)
        [message_id] = await _queue(container, shop, contacts)
        async with container.uow.maintenance() as uow:  # an outage of about an hour so far
            await uow.session.execute(
                text("UPDATE messages SET attempts = :n WHERE id = :id"),
                {"n": tried, "id": message_id},
            )
            await uow.commit()

        await drain(container, "messages")

        [after] = await _messages(container, shop, [message_id])
        assert (after.status, after.attempts) == (status, tried + 1)


async def _interrupt(container, shop, ids, *, claimed_ago: timedelta) -> None:
    """What a worker killed mid-send leaves behind: messages claimed as `sending`."""
    now = datetime.now(UTC)
    async with container.uow.for_shop(shop.id) as uow:
        claimed = await uow.messages.claim(ids, now, now)
        await uow.commit()
    assert len(claimed) == len(ids)
    async with container.uow.maintenance() as uow:
        await uow.session.execute(
            text("UPDATE messages SET claimed_at = :at WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"at": now - claimed_ago, "ids": ids},
        )
        await uow.session.execute(text("DELETE FROM procrastinate_jobs"))
        async with uow.savepoint():
            await uow.jobs.defer(
                DELIVER_MESSAGES.job(
                    {"shop_id": str(shop.id), "message_ids": [str(i) for i in ids]}
                )
            )
        await uow.commit()


async def test_an_interrupted_send_is_looked_up_before_any_resend(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550106", "+14155550107"])
        taken, lost = await _queue(container, shop, contacts)
        await _interrupt(container, shop, [taken, lost], claimed_ago=timedelta(hours=1))
        # The provider took one of them before the crash; the other never reached it.
        [first] = await _messages(container, shop, [taken])
        await container.sms_gateway.send(
            OutboundSms(str(taken), first.to, first.text, "Blossom", unicode=False)
        )

        await drain(container, "messages")

        assert fake.accepted_by_reference[str(taken)] == 1, "found by reference, not resent"
        assert fake.accepted_by_reference[str(lost)] == 1, "never accepted, so sent now"
        statuses = [m.status for m in await _messages(container, shop, [taken, lost])]
        assert statuses == [MessageStatus.SENT, MessageStatus.SENT]
        assert (await _wallet(container, shop))[1] == 0


async def test_when_the_provider_cannot_say_the_message_waits_instead_of_resending(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550108"])
        [message_id] = await _queue(container, shop, contacts)
        await _interrupt(container, shop, [message_id], claimed_ago=timedelta(hours=1))
        fake.lookup_supported = False

        await drain(container, "messages")

        [unknown] = await _messages(container, shop, [message_id])
        assert unknown.status is MessageStatus.UNKNOWN
        assert fake.calls["POST /sms"] == 0, "no blind resend"
        assert (await _wallet(container, shop))[1] == unknown.credits


async def test_a_lost_answer_the_provider_cannot_place_waits_for_its_report_not_a_resend(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        # A short timeout so the hung send gives up quickly; no real waits between tries.
        container.__dict__["sms_gateway"] = MittoSmsGateway(
            MITTO_KEY,
            fake.base_url,
            timeout=httpx.Timeout(0.3, connect=5.0),  # a busy machine can be slow to connect
            base_delay=0.001,
            max_delay=0.01,
        )
        shop, contacts = await _setup(container, ["+14155550113"])
        [sent] = await _queue(container, shop, contacts)
        fake.timeout_next(accept=True)  # Mitto takes it; the answer never arrives
        fake.lookup_supported = False  # and it cannot say so

        await drain(container, "messages")

        [message] = await _messages(container, shop, [sent])
        assert message.status is MessageStatus.UNKNOWN
        assert fake.accepted_by_reference[str(sent)] == 1
        assert await _deliver_jobs(container, shop) == [], "nothing left to send it again"
        assert (await _wallet(container, shop))[1] == message.credits, "still reserved"


async def test_a_live_claim_is_left_alone_and_looked_at_again_after_its_lease(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550109"])
        [message_id] = await _queue(container, shop, contacts)
        await _interrupt(container, shop, [message_id], claimed_ago=timedelta(seconds=0))

        await drain(container, "messages")

        assert fake.calls["POST /sms"] == 0 and fake.calls["GET /sms"] == 0
        [(ids, at)] = await _deliver_jobs(container, shop)
        assert ids == [str(message_id)] and at > datetime.now(UTC)


async def test_the_provider_rate_limit_sends_a_burst_and_schedules_the_rest(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir, SMS_RATE_PER_SECOND="2") as (
        fake,
        container,
    ):
        await container.rate_limiter.reset("sms:provider")
        shop, contacts = await _setup(container, [f"+1415555011{n}" for n in range(5)])
        ids = await _queue(container, shop, contacts)

        await drain(container, "messages")

        assert fake.calls["POST /sms"] == 2
        [(later, at)] = await _deliver_jobs(container, shop)
        assert later == [str(i) for i in ids[2:]] and at > datetime.now(UTC) - timedelta(seconds=1)
        statuses = [m.status for m in await _messages(container, shop, ids)]
        assert statuses == [MessageStatus.SENT] * 2 + [MessageStatus.QUEUED] * 3


async def test_messages_of_an_uninstalled_shop_fail_and_are_released(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550120"])
        [message_id] = await _queue(container, shop, contacts)
        async with container.uow.for_shop(shop.id) as uow:
            stored = await uow.shops.get(shop.id)
            stored.status = ShopStatus.UNINSTALLED
            await uow.shops.save(stored)
            await uow.commit()

        await drain(container, "messages")

        [failed] = await _messages(container, shop, [message_id])
        assert failed.status is MessageStatus.FAILED and fake.calls["POST /sms"] == 0
        assert await _wallet(container, shop) == (FUNDS, 0)


async def _age(container, ids, column: str, by: timedelta) -> None:
    async with container.uow.maintenance() as uow:
        await uow.session.execute(
            text(
                f"UPDATE messages SET {column} = {column} - CAST(:by AS interval) "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"by": by, "ids": ids},
        )
        await uow.commit()


async def test_the_sweep_gives_a_job_back_to_messages_whose_job_was_cancelled(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550121", "+14155550122"])
        ids = await _queue(container, shop, contacts)
        async with container.uow.for_shop(shop.id) as uow:
            assert await uow.jobs.cancel_for_shop(shop.id) == 1
            await uow.commit()
        await _age(container, ids, "created_at", timedelta(hours=1))

        first = await container.sweep_messages()()
        again = await container.sweep_messages()()
        await drain(container, "messages")

        assert (first.requeued, again.requeued) == (2, 0), "a requeued message has its job"
        assert [fake.accepted_by_reference[str(i)] for i in ids] == [1, 1]


async def test_an_unknown_message_with_no_report_in_time_expires_and_is_released(
    database_url, data_dir
):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550123"])
        [message_id] = await _queue(container, shop, contacts)
        await _interrupt(container, shop, [message_id], claimed_ago=timedelta(hours=1))
        fake.lookup_supported = False
        await drain(container, "messages")
        await _age(container, [message_id], "updated_at", timedelta(hours=73))

        result = await container.sweep_messages()()

        assert result.expired == 1
        [expired] = await _messages(container, shop, [message_id])
        assert expired.status is MessageStatus.EXPIRED
        assert await _wallet(container, shop) == (FUNDS, 0)


async def test_a_report_of_acceptance_bills_a_send_whose_fate_was_unknown(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550321"])
        [message_id] = await _queue(container, shop, contacts)
        await _interrupt(container, shop, [message_id], claimed_ago=timedelta(hours=1))
        fake.lookup_supported = False
        await drain(container, "messages")  # the provider cannot say: unknown, reserved

        report = DeliveryReportIn(None, str(message_id), "ACCEPTD", None, None, "{}")
        outcome, _ = await container.record_delivery_report()(report)
        await _age(container, [message_id], "updated_at", timedelta(hours=73))
        await container.sweep_messages()()

        [message] = await _messages(container, shop, [message_id])
        assert (outcome.value, message.status) == ("applied", MessageStatus.SENT)
        # Mitto took the text and bills for it: the shop pays once, the sweep releases nothing.
        assert await _wallet(container, shop) == (FUNDS - message.credits, 0)


async def test_messages_cli_lists_shows_history_and_sweeps(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        shop, contacts = await _setup(container, ["+14155550124"])
        [message_id] = await _queue(container, shop, contacts)
        await drain(container, "messages")
        env = child_env(**make_environ(data_dir, **mitto_env(fake)), DATABASE_URL=database_url)

        def cli(*args: str) -> str:
            result = subprocess.run(
                blossom("messages", *args), env=env, capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        listed = cli("list", "--shop", shop.domain, "--status", "sent")
        shown = cli("show", str(message_id), "--shop", shop.domain)
        swept = cli("sweep")

    assert str(message_id) in listed and "…0124" in listed and "+1415" not in listed
    assert (
        "queued" in shown
        and "sent" in shown
        and fake.by_reference(str(message_id)).provider_id in shown
    )
    assert "requeued 0, expired 0" in swept
