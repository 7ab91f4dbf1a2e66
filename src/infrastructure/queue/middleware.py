"""Worker middleware: every job runs with its origin's trace and request id, in a span,
counted, logged without PII, and every failure is recorded in `job_failures`."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
import traceback
from typing import Any

from procrastinate import JobContext
from procrastinate.middleware import AsyncCallNext
from procrastinate.tasks import Task
from procrastinate.worker import Worker
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from application.errors import PermanentError
from infrastructure.queue.defer import META_KEY
from infrastructure.queue.failures import JobFailureModel
from infrastructure.telemetry.logging import redact, redacted_traceback
from infrastructure.telemetry.metrics import JOB_SECONDS, JOBS
from infrastructure.telemetry.tracing import attach_job_meta, detach_job_meta, open_span

log = logging.getLogger("blossom.jobs")


class UndecodableJob(PermanentError):
    """The job's stored arguments do not fit its task's signature (written by another
    release): no retry can make them fit, so the job fails at once."""


class JobObserver:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __call__(self, call_next: AsyncCallNext, context: JobContext, worker: Worker) -> Any:
        job = context.job
        # The task functions never see the envelope; a retry re-reads it from the row.
        meta = job.task_kwargs.pop(META_KEY, None) or {}
        tokens = attach_job_meta(meta)
        started = time.perf_counter()
        fields = {"job_id": job.id, "task": job.task_name, "attempt": job.attempts}
        try:
            with open_span(
                f"job {job.task_name}",
                attributes={
                    "job.id": job.id or 0,
                    "job.queue": job.queue,
                    "job.attempt": job.attempts,
                },
            ):
                _check_arguments(worker, context)
                result = await call_next()
        except BaseException as exc:
            will_retry = _will_retry(worker, context, exc)
            outcome = "retry" if will_retry else "failed"
            JOBS.labels(job.task_name, outcome).inc()
            log.warning("job %s", outcome, extra={**fields, "error_type": type(exc).__name__})
            await self._record(context, exc, will_retry)
            raise
        else:
            JOBS.labels(job.task_name, "succeeded").inc()
            log.debug("job succeeded", extra=fields)
            return result
        finally:
            JOB_SECONDS.labels(job.task_name).observe(time.perf_counter() - started)
            detach_job_meta(tokens)

    async def _record(self, context: JobContext, exc: BaseException, will_retry: bool) -> None:
        job = context.job
        trace_text = redacted_traceback(exc)
        frames = "".join(traceback.format_tb(exc.__traceback__))
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    insert(JobFailureModel).values(
                        job_id=job.id,
                        task=job.task_name,
                        queue=job.queue,
                        attempt=job.attempts + 1,
                        will_retry=will_retry,
                        error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
                        error=redact(str(exc))[:4000],
                        traceback=trace_text[-16000:],
                        traceback_digest=hashlib.sha256(
                            (type(exc).__qualname__ + frames).encode()
                        ).hexdigest(),
                    )
                )
        except Exception:
            # Losing the record must not hide the job's own failure from procrastinate.
            log.exception("could not record job failure", extra={"job_id": job.id})


def _will_retry(worker: Worker, context: JobContext, exc: BaseException) -> bool:
    if not isinstance(exc, Exception):
        return False
    task = worker.app.tasks.get(context.job.task_name)
    return bool(task and task.get_retry_exception(exception=exc, job=context.job))


# Read once per task function, not once per job: every job passes through here.
_signature = functools.cache(inspect.signature)


def _check_arguments(worker: Worker, context: JobContext) -> None:
    """Bind the job's arguments before the call: a mismatch raised by the call itself is a
    TypeError, which the retry strategies would retry for hours like a transient error."""
    task: Task[Any, Any, Any] | None = worker.app.tasks.get(context.job.task_name)
    if task is None:
        return
    leading = [context] if task.pass_context else []
    try:
        _signature(task.func).bind(*leading, **context.job.task_kwargs)
    except TypeError as exc:
        raise UndecodableJob(f"arguments do not fit task {task.name}: {exc}") from None
