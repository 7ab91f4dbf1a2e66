"""Transactional enqueue: jobs live and die with the transaction that deferred them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from infrastructure.telemetry.logging import request_id_var
from tests.conftest import add_shop
from tests.support import tasks
from tests.support.queue import drain

pytestmark = pytest.mark.usefixtures("clean_db")


async def _jobs_with_marker(container, marker: str) -> list[dict]:
    async with container.uow.maintenance() as uow:
        rows = await uow.session.execute(
            text("SELECT id, args FROM procrastinate_jobs WHERE args->>'marker' = :m"),
            {"m": marker},
        )
        return [dict(r._mapping) for r in rows]


async def test_job_deferred_in_rolled_back_transaction_does_not_exist(container):
    shop = await add_shop(container)
    marker = uuid.uuid4().hex
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(tasks.RECORD.job({"marker": marker}))
        assert job_id is not None
        # leaving without commit rolls back

    assert await _jobs_with_marker(container, marker) == []


async def test_job_deferred_in_committed_transaction_exists_exactly_once(container):
    shop = await add_shop(container)
    marker = uuid.uuid4().hex
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(tasks.RECORD.job({"marker": marker}))
        await uow.audit.record(action="test.deferred", actor="test")
        await uow.commit()

    assert [row["id"] for row in await _jobs_with_marker(container, marker)] == [job_id]


async def test_queueing_lock_conflict_keeps_the_callers_transaction(container):
    shop = await add_shop(container)
    marker = uuid.uuid4().hex
    async with container.uow.for_shop(shop.id) as uow:
        first = await uow.jobs.defer(tasks.RECORD.job({"marker": marker}, queueing_lock=marker))
        second = await uow.jobs.defer(tasks.RECORD.job({"marker": marker}, queueing_lock=marker))
        await uow.audit.record(action="test.after-conflict", actor="test")
        await uow.commit()

    assert first is not None and second is None
    assert len(await _jobs_with_marker(container, marker)) == 1
    async with container.uow.for_shop(shop.id) as uow:
        actions = (await uow.session.execute(text("SELECT action FROM audit_log"))).scalars()
        assert list(actions) == ["test.after-conflict"]


async def test_batch_defers_every_job_in_order_with_one_statement(container):
    shop = await add_shop(container)
    marker = uuid.uuid4().hex
    async with container.uow.for_shop(shop.id) as uow:
        ids = await uow.jobs.defer_many(
            [tasks.RECORD.job({"marker": marker, "n": n}) for n in range(250)]
        )
        await uow.commit()

    rows = await _jobs_with_marker(container, marker)
    assert len(ids) == 250 and ids == sorted(ids)
    assert sorted(r["id"] for r in rows) == ids


async def test_deferred_job_round_trips_through_a_real_worker_with_its_request_id(container):
    shop = await add_shop(container)
    marker = uuid.uuid4().hex
    tasks.seen.clear()
    token = request_id_var.set("req-roundtrip-123")
    try:
        async with container.uow.for_shop(shop.id) as uow:
            await uow.jobs.defer(tasks.RECORD.job({"marker": marker, "shop_id": str(shop.id)}))
            await uow.commit()
    finally:
        request_id_var.reset(token)

    await drain(container, "maintenance")

    assert tasks.seen == [
        {"kwargs": {"marker": marker, "shop_id": str(shop.id)}, "request_id": "req-roundtrip-123"}
    ]
    async with container.uow.maintenance() as uow:
        status = await uow.session.scalar(
            text("SELECT status::text FROM procrastinate_jobs WHERE args->>'marker' = :m"),
            {"m": marker},
        )
    assert status == "succeeded"
