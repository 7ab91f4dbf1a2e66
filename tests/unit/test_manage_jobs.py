"""Dead-letter use cases against in-memory fakes: retry and cancel are audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.operations.manage_jobs import CancelJob, ListJobs, RetryJob, ShowJob
from application.operations.recover_stalled_jobs import RecoverStalledJobs
from application.ports import JobSummary
from domain.errors import NotFound


class FakeJobAdmin:
    def __init__(self, jobs: dict[int, str]) -> None:
        self.jobs = dict(jobs)
        self.stalled: list[tuple[int, int]] = []  # (job id, attempts so far)
        self.reasons: dict[int, str] = {}

    def _summary(self, job_id: int) -> JobSummary:
        return JobSummary(job_id, "t", "q", self.jobs[job_id], 1, datetime.now(UTC), {})

    async def list_jobs(self, *, status, queue, limit):
        return [self._summary(i) for i, s in self.jobs.items() if s == status][:limit]

    async def get_job(self, job_id):
        return self._summary(job_id) if job_id in self.jobs else None

    async def failures(self, job_id):
        return []

    async def retry(self, job_id):
        if self.jobs.get(job_id) != "failed":
            return False
        self.jobs[job_id] = "todo"
        return True

    async def cancel(self, job_id):
        if self.jobs.get(job_id) != "todo":
            return False
        self.jobs[job_id] = "cancelled"
        return True

    async def stalled_jobs(self, *, seconds_since_heartbeat):
        return list(self.stalled)

    async def requeue_stalled(self, job_id):
        self.jobs[job_id] = "todo"

    async def fail_stalled(self, job_id, reason):
        self.jobs[job_id], self.reasons[job_id] = "failed", reason


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []

    async def record(self, *, action, actor, subject="", details=None):
        self.entries.append((action, actor, subject))


async def test_retry_puts_a_failed_job_back_and_audits_the_operator():
    admin, audit = FakeJobAdmin({1: "failed"}), FakeAudit()
    assert await RetryJob(admin, audit)(1, actor="cli:ops") is True
    assert admin.jobs[1] == "todo"
    assert audit.entries == [("job.retried", "cli:ops", "job:1")]


async def test_retry_of_a_job_that_is_not_failed_changes_nothing():
    admin, audit = FakeJobAdmin({1: "succeeded"}), FakeAudit()
    assert await RetryJob(admin, audit)(1, actor="cli:ops") is False
    assert audit.entries == []


async def test_cancel_only_touches_waiting_jobs():
    admin, audit = FakeJobAdmin({1: "todo", 2: "doing"}), FakeAudit()
    assert await CancelJob(admin, audit)(1, actor="a") is True
    assert await CancelJob(admin, audit)(2, actor="a") is False
    assert admin.jobs == {1: "cancelled", 2: "doing"}


async def test_list_rejects_unknown_status_and_show_reports_missing_jobs():
    admin = FakeJobAdmin({1: "failed"})
    assert [j.id for j in await ListJobs(admin)(status="failed")] == [1]
    with pytest.raises(ValueError, match="status must be one of"):
        await ListJobs(admin)(status="exploded")
    with pytest.raises(NotFound):
        await ShowJob(admin)(99)


async def test_recover_stalled_requeues_each_stalled_job():
    admin = FakeJobAdmin({1: "doing", 2: "doing"})
    admin.stalled = [(2, 0)]
    assert await RecoverStalledJobs(admin, seconds_since_heartbeat=30)() == [2]
    assert admin.jobs == {1: "doing", 2: "todo"}


async def test_a_job_whose_worker_keeps_dying_fails_with_the_reason_instead_of_looping():
    admin = FakeJobAdmin({1: "doing", 2: "doing"})
    admin.stalled = [(1, 3), (2, 4)]  # the fifth run of job 2 took its worker down again
    assert await RecoverStalledJobs(admin, seconds_since_heartbeat=30)() == [1, 2]
    assert admin.jobs == {1: "todo", 2: "failed"}
    assert "worker died" in admin.reasons[2]
