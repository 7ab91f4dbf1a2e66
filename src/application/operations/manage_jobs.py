"""The dead-letter view: list, show, retry and cancel jobs. Driven by the CLI and API."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import AuditLog, JobAdmin, JobFailure, JobSummary
from domain.errors import NotFound

JOB_STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: JobSummary
    failures: list[JobFailure]


class ListJobs:
    def __init__(self, admin: JobAdmin) -> None:
        self._admin = admin

    async def __call__(
        self, *, status: str = "failed", queue: str | None = None, limit: int = 50
    ) -> list[JobSummary]:
        if status not in JOB_STATUSES:
            raise ValueError(f"status must be one of {', '.join(JOB_STATUSES)}")
        return await self._admin.list_jobs(status=status, queue=queue, limit=limit)


class ShowJob:
    def __init__(self, admin: JobAdmin) -> None:
        self._admin = admin

    async def __call__(self, job_id: int) -> JobDetail:
        job = await self._admin.get_job(job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        return JobDetail(job=job, failures=await self._admin.failures(job_id))


class RetryJob:
    """Put a failed job back in its queue; the operator's act is audited."""

    def __init__(self, admin: JobAdmin, audit: AuditLog) -> None:
        self._admin = admin
        self._audit = audit

    async def __call__(self, job_id: int, *, actor: str) -> bool:
        retried = await self._admin.retry(job_id)
        if retried:
            await self._audit.record(action="job.retried", actor=actor, subject=f"job:{job_id}")
        return retried


class CancelJob:
    def __init__(self, admin: JobAdmin, audit: AuditLog) -> None:
        self._admin = admin
        self._audit = audit

    async def __call__(self, job_id: int, *, actor: str) -> bool:
        cancelled = await self._admin.cancel(job_id)
        if cancelled:
            await self._audit.record(action="job.cancelled", actor=actor, subject=f"job:{job_id}")
        return cancelled
