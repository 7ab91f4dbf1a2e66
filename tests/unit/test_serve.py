"""`blossom up` runs the API and the worker together: one failing ends both."""

from __future__ import annotations

import asyncio

import pytest

from interfaces.cli.main import main as _cli  # noqa: F401  (first: it registers serve)
from interfaces.cli.serve import run_together


async def test_a_failing_part_stops_the_others_gracefully_and_its_failure_ends_the_run() -> None:
    stop = asyncio.Event()
    wound_down: list[str] = []

    async def worker() -> None:
        raise RuntimeError("worker crashed")

    async def api() -> None:
        await stop.wait()
        wound_down.append("api")

    with pytest.raises(RuntimeError, match="worker crashed"):
        await asyncio.wait_for(run_together(stop, worker(), api()), timeout=10)
    assert wound_down == ["api"], "the API served on after the worker died"


async def test_parts_that_end_on_stop_end_the_run_quietly() -> None:
    stop = asyncio.Event()
    ended: list[str] = []

    async def part(name: str) -> None:
        await stop.wait()
        ended.append(name)

    stop.set()
    await run_together(stop, part("api"), part("worker"))
    assert sorted(ended) == ["api", "worker"]
