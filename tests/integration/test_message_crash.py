"""Exactly once under crashes: the real worker is SIGKILLed several times while it
delivers 2,000 messages to the fake Mitto; afterwards each message was accepted exactly
once (the fake counts by client reference) and every wallet equals its ledger."""

from __future__ import annotations

import signal
import uuid

import pytest
from sqlalchemy import text

from application.messaging.queue_messages import OutgoingMessage
from domain.messages import MessageCategory
from tests.conftest import add_shop
from tests.support.messaging import (
    add_contacts,
    fake_mitto_container,
    fund,
    mitto_env,
    set_messaging,
)
from tests.support.processes import blossom, child_env, eventually, spawn, stop
from tests.support.settings import make_environ

pytestmark = pytest.mark.usefixtures("clean_db")

MESSAGES = 2000
CONTACTS = 200
KILLS = (300, 900, 1500)  # accepted counts at which a worker dies mid-delivery


async def _queue_all(container, shop, contacts) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for round_ in range(MESSAGES // CONTACTS):
        requests = [
            OutgoingMessage(
                text=f"Order update {round_}",
                category=MessageCategory.TRANSACTIONAL,
                source="test",
                idempotency_key=f"crash:{round_}:{c.id}",
                contact_id=c.id,
            )
            for c in contacts
        ]
        async with container.uow.for_shop(shop.id) as uow:
            queued = await container.queue_messages()(uow, await uow.shops.get(shop.id), requests)
            await uow.commit()
        ids += [q.message_id for q in queued]
    return ids


async def _count(container, status: str) -> int:
    async with container.uow.maintenance() as uow:
        return await uow.session.scalar(
            text("SELECT count(*) FROM messages WHERE status = :status"), {"status": status}
        )


async def test_killed_workers_never_send_a_message_twice(database_url, data_dir):
    async with fake_mitto_container(database_url, data_dir) as (fake, container):
        fake.latency = 0.01  # keeps sends in flight whenever a kill lands
        shop = await add_shop(container)
        # Order updates, due now whatever the hour in the contacts' zone.
        await set_messaging(container, shop, transactional_bypass_quiet_hours=True)
        await fund(container, shop, 1_000_000)
        contacts = await add_contacts(
            container, shop, [f"+1415{2000000 + n:07d}" for n in range(CONTACTS)]
        )
        ids = await _queue_all(container, shop, contacts)
        env = child_env(**make_environ(data_dir, **mitto_env(fake)), DATABASE_URL=database_url)
        worker_cmd = blossom("worker", "--queues", "messages")

        for threshold in KILLS:
            worker = spawn(worker_cmd, env)
            try:
                await eventually(
                    lambda t=threshold: _accepted_at_least(fake, t), timeout=120, interval=0.005
                )
            finally:
                worker.send_signal(signal.SIGKILL)
                stop(worker)
            # The dead worker's jobs come back once its heartbeat is stale (1 s in tests).
            await eventually(lambda: _nothing_stuck(container), timeout=30)

        worker = spawn(worker_cmd, env)
        try:
            await eventually(lambda: _all_sent(container), timeout=180, interval=0.2)
        finally:
            output = stop(worker)

        counts = [fake.accepted_by_reference[str(i)] for i in ids]
        assert counts.count(1) == MESSAGES, (
            f"duplicates: {sum(c > 1 for c in counts)}, missing: {counts.count(0)}\n{output}"
        )
        assert fake.calls["GET /sms"] > 0, "some interrupted sends were looked up"
        async with container.uow.for_shop(shop.id) as uow:
            wallet = await uow.wallet.balance()
            assert await uow.wallet.balanced()
            charged = await uow.session.scalar(
                text("SELECT sum(credits) FROM messages WHERE charge = 'captured'")
            )
        assert wallet.reserved == 0 and wallet.balance == 1_000_000 - charged


async def _accepted_at_least(fake, threshold: int) -> bool:
    return len(fake.accepted) >= threshold


async def _nothing_stuck(container) -> bool:
    await container.recover_stalled_jobs()()
    async with container.uow.maintenance() as uow:
        doing = await uow.session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")
        )
    return doing == 0


async def _all_sent(container) -> bool:
    return await _count(container, "sent") == MESSAGES
