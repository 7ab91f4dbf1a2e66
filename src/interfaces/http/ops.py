"""Ops endpoints: liveness, readiness (database, schema at head, queue schema)."""

from __future__ import annotations

import asyncio
import logging

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text

from infrastructure.db.migrate import head_revision, schema_revision
from infrastructure.telemetry.metrics import GDPR_REQUESTS_OVERDUE, QUEUE_DEPTH
from interfaces.bootstrap import Container
from interfaces.http.problems import problem_type

log = logging.getLogger("blossom.http")


class OpsController(Controller):
    include_in_schema = True
    tags = ["ops"]

    @get("/healthz", summary="The process is alive")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="Database reachable, schema at head, queue installed")
    async def readyz(self, container: NamedDependency[Container]) -> Response[dict[str, object]]:
        reason = await _not_ready_reason(container)
        if reason is None:
            return Response({"status": "ready"}, status_code=HTTP_200_OK)
        log.warning("not ready", extra={"reason": reason})
        return Response(
            {
                "type": problem_type(503),
                "title": "Service Unavailable",
                "status": 503,
                "detail": reason,
            },
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            media_type="application/problem+json",
        )


async def refresh_backlog_gauges(container: Container) -> None:
    """Read backlogs at scrape time (queue depth, overdue GDPR requests), so every API
    process reports the same truth, not what its own last job happened to see."""
    try:
        async with asyncio.timeout(2):
            depth = await container.job_admin.queue_depth()
            async with container.uow.maintenance() as uow:
                overdue = await uow.gdpr.count_overdue(container.clock.now())
    except Exception as exc:  # a scrape must still answer when the database does not
        log.warning("backlog gauges unavailable", extra={"error_type": type(exc).__name__})
        return
    QUEUE_DEPTH.clear()
    for queue, status, count in depth:
        QUEUE_DEPTH.labels(queue, status).set(count)
    GDPR_REQUESTS_OVERDUE.set(overdue)


async def _not_ready_reason(container: Container) -> str | None:
    try:
        async with asyncio.timeout(3), container.engine.connect() as conn:
            current = await schema_revision(conn)
            queue = await conn.scalar(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL"))
    except Exception as exc:  # any failure to reach the database means not ready
        return f"database unreachable ({type(exc).__name__})"
    head = head_revision()
    if current != head:
        return (
            f"database schema at {current or 'nothing'}, expected {head}; run `blossom db upgrade`"
        )
    if not queue:
        return "queue schema missing; run `blossom db upgrade`"
    return None
