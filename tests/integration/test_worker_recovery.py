"""Crash and outage recovery: a killed worker's job comes back; a worker outlives a
Postgres restart."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

import pytest
from sqlalchemy import text

from infrastructure.db import migrate
from infrastructure.db.embedded import EmbeddedPostgres
from interfaces.bootstrap import build_container
from tests.conftest import add_shop
from tests.support import tasks
from tests.support.processes import child_env, eventually, spawn, stop
from tests.support.queue import drain
from tests.support.settings import make_environ, make_settings

WORKER = [sys.executable, "-m", "tests.support.worker_main"]


async def _status(container, job_id: int) -> str | None:
    async with container.uow.maintenance() as uow:
        return await uow.session.scalar(
            text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        )


@pytest.mark.usefixtures("clean_db")
async def test_job_of_a_killed_worker_is_retried_by_the_stalled_job_task(
    container, database_url, data_dir
):
    shop = await add_shop(container)
    marker = uuid.uuid4().hex
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(tasks.BLOCK_FIRST.job({"marker": marker}))
        await uow.commit()
    worker = spawn(WORKER, child_env(**make_environ(data_dir), DATABASE_URL=database_url))
    try:
        await eventually(lambda: _is(container, job_id, "doing"))
    finally:
        worker.send_signal(signal.SIGKILL)
        stop(worker)

    recover = container.recover_stalled_jobs()
    recovered = await eventually(recover, timeout=30)

    assert recovered == [job_id]
    assert await _status(container, job_id) == "todo"
    tasks.seen.clear()
    await drain(container, "maintenance")
    assert await _status(container, job_id) == "succeeded"
    assert tasks.seen == [{"unblocked": marker}]


@pytest.mark.usefixtures("clean_db")
async def test_a_job_whose_worker_died_on_its_fifth_run_fails_with_the_reason(container):
    async with container.uow.maintenance() as uow:
        job_id = await uow.jobs.defer(tasks.RECORD.job({"marker": "crasher"}))
        worker = await uow.session.scalar(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '1 hour') RETURNING id"
            )
        )
        await uow.session.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker, "
                "attempts = 4 WHERE id = :id"
            ),
            {"worker": worker, "id": job_id},
        )
        await uow.commit()

    assert await container.recover_stalled_jobs()() == [job_id]

    assert await _status(container, job_id) == "failed"
    [failure] = await container.job_admin.failures(job_id)
    assert failure.error_type == "WorkerDied" and "5 runs" in failure.error


async def _is(container, job_id: int, status: str) -> bool:
    return await _status(container, job_id) == status


async def test_worker_processes_jobs_again_after_postgres_restarts(tmp_path):
    pg = EmbeddedPostgres(tmp_path / "restart")
    await asyncio.to_thread(migrate.upgrade, pg.url)
    container = build_container(make_settings(tmp_path), database_url=pg.url)
    worker = spawn(WORKER, child_env(**make_environ(tmp_path), DATABASE_URL=pg.url))
    try:
        shop = await add_shop(container)
        first = await _defer_prune(container, shop.id)
        await eventually(lambda: _is(container, first, "succeeded"))

        await asyncio.to_thread(pg.stop)
        await container.engine.dispose()
        await asyncio.to_thread(pg.start)

        second = await _defer_prune(container, shop.id)
        await eventually(lambda: _is(container, second, "succeeded"), timeout=60)
        assert worker.poll() is None, "the worker must survive the restart, not exit"
    finally:
        output = stop(worker)
        await container.aclose()
        await asyncio.to_thread(pg.close)
    assert "reconnecting" in output


async def _defer_prune(container, shop_id) -> int:
    from application.tasks import PRUNE_FINISHED_JOBS

    async with container.uow.for_shop(shop_id) as uow:
        job_id = await uow.jobs.defer(PRUNE_FINISHED_JOBS.job())
        await uow.commit()
    return job_id


async def _job_row(container, job_id: int) -> dict:
    async with container.uow.maintenance() as uow:
        row = await uow.session.execute(
            text("SELECT status::text AS status, attempts FROM procrastinate_jobs WHERE id = :id"),
            {"id": job_id},
        )
        return dict(row.one()._mapping)


@pytest.mark.usefixtures("clean_db")
async def test_a_job_still_running_while_its_worker_shuts_down_is_not_handed_out_again(
    container, database_url, data_dir
):
    """On SIGTERM the worker waits for the job in flight; meanwhile it must keep proving it
    is alive, or the stalled-job task (here: STALLED_WORKER_SECONDS=1) requeues the job and
    a second worker runs it while the first is still running it."""
    key = uuid.uuid4().int >> 65  # fits a bigint
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(tasks.HOLD.job({"key": key}))
        await uow.commit()
    recover = container.recover_stalled_jobs()
    worker = spawn(WORKER, child_env(**make_environ(data_dir), DATABASE_URL=database_url))
    try:
        async with container.sessions() as holder, holder.begin():
            await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            await eventually(lambda: _is(container, job_id, "doing"))
            async with container.uow.maintenance() as uow:
                signalled_at = await uow.session.scalar(text("SELECT clock_timestamp()"))
            worker.send_signal(signal.SIGTERM)

            async def alive_past_the_stalled_threshold() -> bool:
                assert await recover() == [], "the job of a live worker was requeued"
                async with container.uow.maintenance() as uow:
                    return bool(
                        await uow.session.scalar(
                            text(
                                "SELECT w.last_heartbeat "
                                "       > CAST(:t AS timestamptz) + interval '1.5 seconds' "
                                "FROM procrastinate_jobs j "
                                "JOIN procrastinate_workers w ON w.id = j.worker_id "
                                "WHERE j.id = :id"
                            ),
                            {"t": signalled_at, "id": job_id},
                        )
                    )

            await eventually(alive_past_the_stalled_threshold, timeout=30)
            assert worker.poll() is None  # still waiting for its job
        # The lock is released: the job ends, and so does the worker.
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        stop(worker)

    # One run: it was never put back in the queue.
    assert await _job_row(container, job_id) == {"status": "succeeded", "attempts": 1}
