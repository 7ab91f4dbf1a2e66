"""Run the real worker in-process until the given queues have nothing due."""

from __future__ import annotations

from interfaces.bootstrap import Container


async def drain(container: Container, *queues: str) -> None:
    await container.queue.run_worker_async(
        wait=False,
        install_signal_handlers=False,
        queues=list(queues),
        **container.worker_options(),
    )
