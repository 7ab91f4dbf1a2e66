"""Maintenance tasks: recover jobs of dead workers, prune finished jobs and idle rate-limit
keys. Periodic, deduplicated across workers by a queueing lock (never a `lock`, which would
block)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import procrastinate

from application.tasks import PRUNE_FINISHED_JOBS, PRUNE_RATE_LIMITS, RECOVER_STALLED_JOBS
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

    # Unauthenticated routes (install links, storefront forms) add a rate-limit key per
    # caller; nothing else ever deletes one, so without this the table only grows.
    @bp.periodic(cron="41 * * * *", periodic_id="prune-rate-limits")
    @bp.task(
        name=PRUNE_RATE_LIMITS.name,
        queue=PRUNE_RATE_LIMITS.queue,
        queueing_lock=PRUNE_RATE_LIMITS.qualified,
        retry=retry,
    )
    async def prune_rate_limits(timestamp: int | None = None) -> None:
        pruned = await container.rate_limiter.prune()
        if pruned:
            log.info("pruned idle rate-limit keys", extra={"pruned": pruned})

    return bp
