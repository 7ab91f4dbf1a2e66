"""Tasks that exist only in tests, registered beside the real ones in the test container."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import procrastinate
from sqlalchemy import text

from application.errors import TransientError
from application.tasks import TaskRef
from infrastructure.queue.retry import BackoffRetry
from infrastructure.telemetry.logging import request_id_var

if TYPE_CHECKING:
    from interfaces.bootstrap import Container

RECORD = TaskRef("testing", "record", "maintenance")
FLAKY = TaskRef("testing", "flaky", "maintenance")
BLOCK_FIRST = TaskRef("testing", "block_first_attempt", "maintenance")
HOLD = TaskRef("testing", "hold", "maintenance")

# What the test tasks saw, for assertions (tests run one at a time).
seen: list[dict[str, Any]] = []
flaky_state = {"fail": True}


def testing_blueprints(container: Container) -> dict[str, procrastinate.Blueprint]:
    bp = procrastinate.Blueprint()

    @bp.task(name=RECORD.name, queue=RECORD.queue)
    async def record(**kwargs: Any) -> None:
        seen.append({"kwargs": kwargs, "request_id": request_id_var.get()})

    @bp.task(name=FLAKY.name, queue=FLAKY.queue, retry=BackoffRetry(max_attempts=3, base_seconds=0))
    async def flaky(n: int) -> None:
        if flaky_state["fail"]:
            raise TransientError(f"flaky failure for +14155550132 (n={n})")
        seen.append({"flaky": n})

    @bp.task(name=BLOCK_FIRST.name, queue=BLOCK_FIRST.queue, pass_context=True)
    async def block_first_attempt(context: procrastinate.JobContext, marker: str) -> None:
        if context.job.attempts == 0:
            await asyncio.Event().wait()  # stands for work cut short by a killed worker
        seen.append({"unblocked": marker})

    @bp.task(name=HOLD.name, queue=HOLD.queue)
    async def hold(key: int) -> None:
        """Runs until the test releases the advisory lock `key` it holds."""
        async with container.sessions() as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    return {"testing": bp}
