"""Maintenance tasks: recover jobs of dead workers, prune finished jobs and idle rate-limit
keys. Periodic, deduplicated across workers by a queueing lock (never a `lock`, which would
block)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import procrastinate

from application.tasks import PRUNE_FINISHED_JOBS, PRUNE_RATE_LIMITS, RECOVER_STALLED_JOBS
from infrastructure.queue.periodic import periodic_task
from infrastructure.telemetry.metrics import STALLED_JOBS_RECOVERED

if TYPE_CHECKING:
    from interfaces.bootstrap import Container

log = logging.getLogger("blossom.maintenance")


def maintenance_blueprint(container: Container) -> procrastinate.Blueprint:
    bp = procrastinate.Blueprint()

    @periodic_task(bp, RECOVER_STALLED_JOBS, cron="* * * * *", periodic_id="recover-stalled")
    async def recover_stalled_jobs(timestamp: int | None = None) -> None:
        recovered = await container.recover_stalled_jobs()()
        if recovered:
            STALLED_JOBS_RECOVERED.inc(len(recovered))
            log.warning("requeued jobs of dead workers", extra={"job_ids": recovered})

    @periodic_task(bp, PRUNE_FINISHED_JOBS, cron="17 * * * *", periodic_id="prune-finished")
    async def prune_finished_jobs(timestamp: int | None = None) -> None:
        await container.prune_finished_jobs()()

    # Unauthenticated routes (install links, storefront forms) add a rate-limit key per
    # caller; nothing else ever deletes one, so without this the table only grows.
    @periodic_task(bp, PRUNE_RATE_LIMITS, cron="41 * * * *", periodic_id="prune-rate-limits")
    async def prune_rate_limits(timestamp: int | None = None) -> None:
        pruned = await container.rate_limiter.prune()
        if pruned:
            log.info("pruned idle rate-limit keys", extra={"pruned": pruned})

    return bp
