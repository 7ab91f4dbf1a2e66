"""Periodic tasks: scheduled by every worker, run once per tick."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import procrastinate

from application.tasks import TaskRef
from infrastructure.queue.retry import BackoffRetry

PeriodicFunc = Callable[..., Awaitable[None]]


def periodic_task(
    bp: procrastinate.Blueprint, ref: TaskRef, *, cron: str, periodic_id: str
) -> Callable[[PeriodicFunc], Any]:
    """`bp.periodic` over `bp.task` for `ref`. Its queueing lock keeps one run waiting however
    many workers defer it; a failing run is retried a few times, then the next tick tries."""

    def register(func: PeriodicFunc) -> Any:
        task = bp.task(
            name=ref.name,
            queue=ref.queue,
            queueing_lock=ref.qualified,
            retry=BackoffRetry(max_attempts=3),
        )(func)
        return bp.periodic(cron=cron, periodic_id=periodic_id)(task)

    return register
