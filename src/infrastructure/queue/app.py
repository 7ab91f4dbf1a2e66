"""The procrastinate app (psycopg connector) and a worker that outlives Postgres restarts."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as pexc
from procrastinate.worker import Worker

from infrastructure.db.engine import libpq_url
from infrastructure.telemetry.metrics import WORKER_RECONNECTS

log = logging.getLogger("blossom.worker")

# Hot queues delete finished jobs so the jobs table stays small; the rest keep them
# for the dead-letter view until the prune task removes them.
HOT_QUEUES = frozenset({"messages", "campaigns"})


def delete_jobs_policy(queues: Iterable[str] | None) -> str:
    """A worker dedicated to hot queues deletes each job as it succeeds."""
    return "successful" if queues and set(queues) <= HOT_QUEUES else "never"


def create_queue_app(
    database_url: str,
    blueprints: Mapping[str, procrastinate.Blueprint],
    *,
    worker_defaults: Mapping[str, Any] | None = None,
    pool_size: int = 4,
) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), min_size=1, max_size=pool_size
    )
    app = procrastinate.App(connector=connector, worker_defaults=dict(worker_defaults or {}))
    for namespace, blueprint in blueprints.items():
        app.add_tasks_from(blueprint, namespace=namespace)
    return app


_DB_ERRORS = (psycopg.OperationalError, pexc.ConnectorException, OSError)


async def run_supervised_worker(
    app: procrastinate.App,
    *,
    queues: Iterable[str] | None,
    stop: asyncio.Event,
    concurrency: int = 1,
    max_backoff: float = 15.0,
    **worker_options: Any,
) -> None:
    """Run the worker until `stop` is set; when Postgres goes away, reconnect with backoff.

    procrastinate's worker exits when its connection dies; this loop reopens the pool
    and starts a new worker, so a database restart costs seconds, not an outage.
    """
    attempt = 0
    queue_list = list(queues) if queues else None
    while not stop.is_set():
        try:
            async with app.open_async():
                attempt = 0
                await _run_until_stopped(app, stop, queue_list, concurrency, worker_options)
            return
        except _DB_ERRORS as exc:
            if stop.is_set():
                return
            attempt += 1
            WORKER_RECONNECTS.inc()
            delay = min(max_backoff, 0.5 * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
            log.warning(
                "worker lost the database; reconnecting",
                extra={"error_type": type(exc).__name__, "retry_in_s": round(delay, 2)},
            )
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                continue


async def _run_until_stopped(
    app: procrastinate.App,
    stop: asyncio.Event,
    queues: list[str] | None,
    concurrency: int,
    worker_options: Mapping[str, Any],
) -> None:
    app.perform_import_paths()
    runner = Worker(
        app=app,
        **{
            **app.worker_defaults,
            **worker_options,
            "queues": queues,
            "concurrency": concurrency,
            "install_signal_handlers": False,
        },
    )
    worker = asyncio.create_task(runner.run())
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        # procrastinate stops heart-beating as soon as it starts shutting down, yet waits
        # for the jobs in flight: once they outlast `stalled_worker_timeout`, the stalled-job
        # task would hand them to another worker while they still run here. Keep beating
        # until the worker has finished them.
        beating = asyncio.create_task(_beat_while_stopping(app, runner))
        worker.cancel()  # procrastinate treats cancellation as a graceful stop
        await asyncio.gather(worker, return_exceptions=True)
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        return
    stopper.cancel()
    worker.result()  # re-raise the worker's failure for the reconnect loop
    if worker_options.get("wait", True):
        raise pexc.ConnectorException("worker stopped unexpectedly")


async def _beat_while_stopping(app: procrastinate.App, runner: Worker) -> None:
    while (worker_id := runner.worker_id) is not None:
        try:
            await app.job_manager.update_heartbeat(worker_id)
        except _DB_ERRORS:
            log.warning("could not update the heartbeat of a stopping worker")
        await asyncio.sleep(runner.update_heartbeat_interval)
