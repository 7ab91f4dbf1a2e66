"""`JobQueue` adapter: defer jobs on the unit of work's own connection.

procrastinate has no asyncpg connector, so we call its SQL function
`procrastinate_defer_jobs_v1` directly. The jobs are part of the caller's
transaction: they exist only if it commits. When a job carries a queueing lock, a
savepoint keeps a conflict from aborting the caller's transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from application.ports import JobRequest

META_KEY = "_meta"

# One statement for any batch size: parallel arrays, unnested into typed rows.
_DEFER_SQL = text(
    """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW(
            CAST(j.queue_name AS varchar),
            CAST(j.task_name AS varchar),
            CAST(j.priority AS integer),
            CAST(j.lock AS text),
            CAST(j.queueing_lock AS text),
            CAST(j.args AS jsonb),
            CAST(j.scheduled_at AS timestamptz)
        )::procrastinate_job_to_defer_v1
        FROM unnest(
            CAST(:queue_names AS varchar[]), CAST(:task_names AS varchar[]),
            CAST(:priorities AS integer[]), CAST(:locks AS text[]),
            CAST(:queueing_locks AS text[]), CAST(:args AS text[]),
            CAST(:scheduled_ats AS timestamptz[])
        ) WITH ORDINALITY AS j(queue_name, task_name, priority, lock, queueing_lock,
                               args, scheduled_at, ord)
        ORDER BY j.ord
    )))
    """
)


class SqlJobQueue:
    def __init__(self, session: AsyncSession, meta: Callable[[], Mapping[str, Any]] = dict) -> None:
        self._session = session
        self._meta = meta

    async def defer(self, job: JobRequest) -> int | None:
        try:
            ids = await self.defer_many([job])
        except IntegrityError as exc:
            if "procrastinate_jobs_queueing_lock_idx" in str(exc.orig):
                return None
            raise
        return ids[0]

    async def defer_many(self, jobs: Sequence[JobRequest]) -> list[int]:
        if not jobs:
            return []
        meta = dict(self._meta())
        params = {
            "queue_names": [j.queue for j in jobs],
            "task_names": [j.task for j in jobs],
            "priorities": [j.priority for j in jobs],
            "locks": [j.lock for j in jobs],
            "queueing_locks": [j.queueing_lock for j in jobs],
            "args": [encode_args(j.args, meta) for j in jobs],
            "scheduled_ats": [j.scheduled_at for j in jobs],
        }
        if not any(j.queueing_lock for j in jobs):
            # Nothing can conflict, so no savepoint: it would halve single-defer throughput.
            return list((await self._session.execute(_DEFER_SQL, params)).scalars())
        async with self._session.begin_nested():
            return list((await self._session.execute(_DEFER_SQL, params)).scalars())

    async def cancel_for_shop(self, shop_id: uuid.UUID, *, sparing: Sequence[str] = ()) -> int:
        cancelled = await self._session.scalar(
            text(
                "SELECT count(procrastinate_cancel_job_v1(id, false, false)) "
                "FROM procrastinate_jobs WHERE status = 'todo' AND args->>'shop_id' = :shop "
                "AND NOT task_name = ANY(CAST(:sparing AS text[]))"
            ),
            {"shop": str(shop_id), "sparing": list(sparing)},
        )
        return int(cancelled or 0)


def encode_args(args: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """A job's args as stored: the task's own, and its origin under `META_KEY`."""
    payload = dict(args)
    if meta:
        payload[META_KEY] = dict(meta)
    return json.dumps(payload, separators=(",", ":"), default=str)
