"""`blossom worker` with the test tasks registered: run as a separate process by tests
that kill it or restart Postgres under it."""

from __future__ import annotations

import asyncio

from infrastructure.queue.app import run_supervised_worker
from infrastructure.settings import load_settings
from interfaces.bootstrap import build_container
from interfaces.cli.main import stop_event_on_signals
from tests.support.tasks import testing_blueprints


async def main() -> None:
    container = build_container(load_settings(), extra_blueprints=testing_blueprints)
    try:
        await run_supervised_worker(
            container.queue,
            queues=None,
            stop=stop_event_on_signals(),
            fetch_job_polling_interval=0.5,
            **container.worker_options(),
        )
    finally:
        await container.aclose()


if __name__ == "__main__":
    asyncio.run(main())
