"""Two transactions interleaved at a shop read, to test what each one's locks allow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from infrastructure.db.shops import SqlShopRepository

# Time enough for the other transaction to commit when nothing holds it back. When a lock
# of ours holds it back, the timeout is what lets us go on: a hang turns into progress.
_HEAD_START = 1.0


@asynccontextmanager
async def racing_shop_read(
    other: Callable[[], Awaitable[object]], *, nth: int = 1
) -> AsyncIterator[None]:
    """Right after the `nth` shop read of the block, run `other` in its own transaction,
    as another worker would, until it commits or waits on a lock the block holds. Leaving
    the block awaits it, so its outcome is settled when the test looks."""
    read = SqlShopRepository.get
    started: list[asyncio.Task[object]] = []
    reads = 0

    async def read_then_race(self, shop_id, **kwargs):
        nonlocal reads
        found = await read(self, shop_id, **kwargs)
        reads += 1
        if reads == nth:
            started.append(asyncio.ensure_future(other()))
            await asyncio.wait(started, timeout=_HEAD_START)
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SqlShopRepository, "get", read_then_race)
        yield
    assert started, f"the block made fewer than {nth} shop reads"
    await started[0]
