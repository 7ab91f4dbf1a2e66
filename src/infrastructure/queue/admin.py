"""`JobAdmin` adapter: the dead-letter view and recovery, over procrastinate's tables."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import procrastinate
from procrastinate.exceptions import TaskNotFound
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from application.ports import JobFailure, JobSummary
from infrastructure.queue.defer import META_KEY

_JOBS = """
SELECT j.id, j.task_name, j.queue_name, j.status::text AS status, j.attempts, j.scheduled_at,
       j.args::text AS args,
       COALESCE((SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id), now())
         AS last_event_at
  FROM procrastinate_jobs j
"""
_FAILURES = """
SELECT job_id, task, queue, attempt, error_type, error, traceback_digest, failed_at
  FROM job_failures WHERE job_id = ANY(:ids) ORDER BY job_id, failed_at, id
"""

_TASK_NOT_FOUND = f"{TaskNotFound.__module__}.{TaskNotFound.__qualname__}"

# What the job middleware records for an exception, for a death it never saw.
_RECORD_WORKER_DIED = text(
    """
    INSERT INTO job_failures (job_id, task, queue, attempt, will_retry, error_type, error,
                              traceback, traceback_digest)
    SELECT id, task_name, queue_name, attempts + 1, false, 'WorkerDied', :reason, '',
           encode(sha256('WorkerDied'::bytea), 'hex')
      FROM procrastinate_jobs WHERE id = :job_id
    """
)


class ProcrastinateJobAdmin:
    def __init__(self, app: procrastinate.App, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._app = app
        self._sessions = sessions

    async def list_jobs(self, *, status: str, queue: str | None, limit: int) -> list[JobSummary]:
        sql = (
            _JOBS
            + """
         WHERE j.status = CAST(:status AS procrastinate_job_status)
           AND (CAST(:queue AS varchar) IS NULL OR j.queue_name = :queue)
         ORDER BY j.id DESC LIMIT :limit
        """
        )
        return await self._summaries(sql, {"status": status, "queue": queue, "limit": limit})

    async def get_job(self, job_id: int) -> JobSummary | None:
        found = await self._summaries(_JOBS + " WHERE j.id = :id", {"id": job_id})
        return found[0] if found else None

    async def failures(self, job_id: int) -> list[JobFailure]:
        async with self._sessions() as session:
            rows = (await session.execute(text(_FAILURES), {"ids": [job_id]})).mappings()
            recorded = [JobFailure(**row) for row in rows]
        if recorded:
            return recorded
        job = await self.get_job(job_id)
        return [job.last_failure] if job and job.last_failure else []

    async def retry(self, job_id: int) -> bool:
        job = await self.get_job(job_id)
        if job is None or job.status != "failed":
            return False
        await self._app.job_manager.retry_job_by_id_async(job_id, retry_at=_now())
        return True

    async def cancel(self, job_id: int) -> bool:
        return await self._app.job_manager.cancel_job_by_id_async(job_id)

    async def stalled_jobs(self, *, seconds_since_heartbeat: float) -> list[tuple[int, int]]:
        jobs = await self._app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=seconds_since_heartbeat
        )
        return [(job.id, job.attempts) for job in jobs if job.id is not None]

    async def requeue_stalled(self, job_id: int) -> None:
        await self._app.job_manager.retry_job_by_id_async(job_id, retry_at=_now())

    async def fail_stalled(self, job_id: int, reason: str) -> None:
        await self._app.job_manager.finish_job_by_id_async(
            job_id, status=procrastinate.jobs.Status.FAILED, delete_job=False
        )
        async with self._sessions() as session, session.begin():
            await session.execute(_RECORD_WORKER_DIED, {"job_id": job_id, "reason": reason})

    async def prune_finished(self, *, older_than_hours: int) -> None:
        await self._app.job_manager.delete_old_jobs(
            nb_hours=older_than_hours, include_cancelled=True, include_aborted=True
        )
        # A failure record outlives its job only while the job is still in the table.
        async with self._sessions() as session, session.begin():
            await session.execute(
                text(
                    "DELETE FROM job_failures f WHERE NOT EXISTS "
                    "(SELECT 1 FROM procrastinate_jobs j WHERE j.id = f.job_id)"
                )
            )

    async def queue_depth(self) -> list[tuple[str, str, int]]:
        """Waiting and running jobs per queue: the backlog an operator watches."""
        async with self._sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs "
                    "WHERE status IN ('todo', 'doing') GROUP BY 1, 2"
                )
            )
            return [(q, s, n) for q, s, n in rows]

    async def _summaries(self, sql: str, params: dict[str, Any]) -> list[JobSummary]:
        async with self._sessions() as session:
            rows = list((await session.execute(text(sql), params)).mappings())
            ids = [row["id"] for row in rows]
            failures = (await session.execute(text(_FAILURES), {"ids": ids})).mappings()
        last: dict[int, JobFailure] = {f["job_id"]: JobFailure(**f) for f in failures}
        return [
            JobSummary(
                id=row["id"],
                task=row["task_name"],
                queue=row["queue_name"],
                status=row["status"],
                attempts=row["attempts"],
                scheduled_at=row["scheduled_at"],
                args={k: v for k, v in json.loads(row["args"]).items() if k != META_KEY},
                last_failure=last.get(row["id"]) or self._unknown_task(row),
            )
            for row in rows
        ]

    def _unknown_task(self, row: Mapping[str, Any]) -> JobFailure | None:
        """procrastinate fails a job whose task it does not know (removed or renamed since
        the job was deferred) before any middleware runs, so no failure was recorded: say
        why, rather than list a failed job without a cause."""
        if row["status"] != "failed" or row["task_name"] in self._app.tasks:
            return None
        return JobFailure(
            job_id=row["id"],
            task=row["task_name"],
            queue=row["queue_name"],
            attempt=row["attempts"],
            error_type=_TASK_NOT_FOUND,
            error=f"no task named {row['task_name']!r} is registered",
            traceback_digest="",
            failed_at=row["last_event_at"],
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
