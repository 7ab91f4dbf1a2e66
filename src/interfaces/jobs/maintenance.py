"""Maintenance tasks: recover jobs of dead workers, prune finished jobs. Periodic,
deduplicated across workers by a queueing lock (never a `lock`, which would block)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import procrastinate

from application.tasks import PRUNE_FINISHED_JOBS, RECOVER_STALLED_JOBS
from infrastructure.queue.retry import BackoffRetry
from infrastructure.telemetry.metrics import STALLED_JOBS_RECOVERED

if TYPE_CHECKING:
    from interfaces.bootstrap import Container

log = logging.getLogger("blossom.maintenance")


def maintenance_blueprint(container: Container) -> procrastinate.Blueprint:
    bp = procrastinate.Blueprint()
    retry = BackoffRetry(max_attempts=3)

    @bp.periodic(cron="* * * * *", periodic_id="recover-stalled")
    @bp.task(
        name=RECOVER_STALLED_JOBS.name,
        queue=RECOVER_STALLED_JOBS.queue,
        queueing_lock=RECOVER_STALLED_JOBS.qualified,
        retry=retry,
    )
    async def recover_stalled_jobs(timestamp: int | None = None) -> None:
        recovered = await container.recover_stalled_jobs()()
        if recovered:
            STALLED_JOBS_RECOVERED.inc(len(recovered))
            log.warning("requeued jobs of dead workers", extra={"job_ids": recovered})

    @bp.periodic(cron="17 * * * *", periodic_id="prune-finished")
    @bp.task(
        name=PRUNE_FINISHED_JOBS.name,
        queue=PRUNE_FINISHED_JOBS.queue,
        queueing_lock=PRUNE_FINISHED_JOBS.qualified,
        retry=retry,
    )
    async def prune_finished_jobs(timestamp: int | None = None) -> None:
        await container.prune_finished_jobs()()

    return bp
