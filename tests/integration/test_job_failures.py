"""The dead-letter view: failures retried with backoff, recorded, listed and retried."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import text

from application.operations.manage_jobs import ListJobs, ShowJob
from tests.conftest import add_shop
from tests.support import tasks
from tests.support.processes import blossom, child_env
from tests.support.queue import drain
from tests.support.settings import make_environ

pytestmark = pytest.mark.usefixtures("clean_db")


async def _defer_flaky(container) -> int:
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(tasks.FLAKY.job({"n": 7}))
        await uow.commit()
    return job_id


async def test_failing_job_is_retried_then_lands_in_the_failed_list_with_its_error(container):
    tasks.flaky_state["fail"] = True
    job_id = await _defer_flaky(container)

    await drain(container, "maintenance")

    failed = await ListJobs(container.job_admin)(status="failed")
    assert [job.id for job in failed] == [job_id]
    detail = await ShowJob(container.job_admin)(job_id)
    assert [(f.attempt, f.error_type.rsplit(".", 1)[-1]) for f in detail.failures] == [
        (1, "TransientError"),
        (2, "TransientError"),
        (3, "TransientError"),
    ]
    assert "flaky failure" in detail.failures[-1].error
    assert "+14155550132" not in detail.failures[-1].error  # recorded errors are redacted
    async with container.uow.maintenance() as uow:
        will_retry = (
            await uow.session.execute(
                text("SELECT will_retry FROM job_failures WHERE job_id = :id ORDER BY attempt"),
                {"id": job_id},
            )
        ).scalars()
        assert list(will_retry) == [True, True, False]


async def test_cli_retry_brings_a_failed_job_back_and_it_can_then_succeed(
    container, database_url, data_dir
):
    tasks.flaky_state["fail"] = True
    tasks.seen.clear()
    job_id = await _defer_flaky(container)
    await drain(container, "maintenance")

    env = child_env(**make_environ(data_dir), DATABASE_URL=database_url)
    listed = subprocess.run(blossom("jobs", "list"), env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert str(job_id) in listed.stdout and "TransientError" in listed.stdout
    retried = subprocess.run(
        blossom("jobs", "retry", str(job_id)), env=env, capture_output=True, text=True
    )
    assert retried.returncode == 0, retried.stderr

    assert (await container.job_admin.get_job(job_id)).status == "todo"
    tasks.flaky_state["fail"] = False
    await drain(container, "maintenance")
    assert (await container.job_admin.get_job(job_id)).status == "succeeded"
    assert tasks.seen == [{"flaky": 7}]
    async with container.uow.maintenance() as uow:
        audited = await uow.session.scalar(
            text("SELECT count(*) FROM audit_log WHERE action = 'job.retried' AND subject = :s"),
            {"s": f"job:{job_id}"},
        )
    assert audited == 1


async def test_retrying_a_job_that_is_not_failed_is_refused(container, database_url, data_dir):
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(tasks.RECORD.job({"marker": "waiting"}))
        await uow.commit()
    env = child_env(**make_environ(data_dir), DATABASE_URL=database_url)
    result = subprocess.run(
        blossom("jobs", "retry", str(job_id)), env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "not failed" in result.stderr


async def test_prune_removes_failure_records_of_jobs_that_are_gone(container):
    tasks.flaky_state["fail"] = True
    job_id = await _defer_flaky(container)
    await drain(container, "maintenance")
    async with container.uow.maintenance() as uow:
        await uow.session.execute(
            text("DELETE FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        )
        await uow.commit()

    await container.prune_finished_jobs()()

    assert await container.job_admin.failures(job_id) == []


@pytest.mark.parametrize(
    "args",
    [
        ("jobs", "show", str(2**63)),
        ("jobs", "retry", str(2**63)),
        ("jobs", "cancel", str(2**63)),
        ("jobs", "list", "--limit", "-1"),
        ("webhooks", "list", "--limit", "-1"),
        ("wallet", "ledger", "--shop", "shop.myshopify.com", "--limit", "-1"),
    ],
)
async def test_an_out_of_range_number_is_a_usage_error_not_a_database_one(
    database_url, data_dir, args
):
    """Job ids are bigints: a larger one cannot name a job, and must not reach Postgres to
    come back as 'database error, check DATABASE_URL' (or, from cancel, a traceback)."""
    env = child_env(**make_environ(data_dir), DATABASE_URL=database_url)
    result = subprocess.run(blossom(*args), env=env, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "Invalid value" in result.stderr
    assert "Traceback" not in result.stderr and "database error" not in result.stderr


async def test_a_job_for_a_task_that_no_longer_exists_shows_why_it_failed(container):
    """A job deferred by an older release, for a task since removed or renamed: the worker
    fails it before any middleware runs, so the dead-letter view must still say why."""
    from application.tasks import TaskRef

    shop = await add_shop(container)
    gone = TaskRef("testing", "removed_in_a_later_release", "maintenance")
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(gone.job({"n": 1}))
        await uow.commit()

    await drain(container, "maintenance")

    [job] = await ListJobs(container.job_admin)(status="failed")
    assert job.id == job_id
    assert job.last_failure is not None
    assert job.last_failure.error_type.rsplit(".", 1)[-1] == "TaskNotFound"
    detail = await ShowJob(container.job_admin)(job_id)
    assert [f.error_type.rsplit(".", 1)[-1] for f in detail.failures] == ["TaskNotFound"]


async def test_a_job_whose_arguments_no_longer_fit_its_task_fails_at_once(container):
    """Arguments written for another version of the task never bind: retrying them for
    hours only delays the dead-letter entry."""
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        job_id = await uow.jobs.defer(tasks.FLAKY.job({"count": 7}))
        await uow.commit()

    await drain(container, "maintenance")

    detail = await ShowJob(container.job_admin)(job_id)
    assert detail.job.status == "failed"
    assert [(f.attempt, f.error_type.rsplit(".", 1)[-1]) for f in detail.failures] == [
        (1, "UndecodableJob")
    ]
