"""Group commit: what arrives during a write is the next batch; each caller gets its own
answer; one bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from infrastructure.group_commit import GroupCommit


class Writer:
    """Records each batch; the first write waits for `release`; items named "bad" fail."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            await self.release.wait()
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]


async def _first_write_in_progress(group: GroupCommit, writer: Writer) -> asyncio.Task:
    first = asyncio.create_task(group.submit("first"))
    await writer.started.wait()
    return first


async def test_items_arriving_during_a_write_form_the_next_batch():
    writer = Writer()
    group = GroupCommit("test", writer, max_batch=10)
    first = await _first_write_in_progress(group, writer)
    rest = [asyncio.create_task(group.submit(f"item-{i}")) for i in range(5)]
    writer.release.set()

    assert await first == "FIRST"
    assert await asyncio.gather(*rest) == [f"ITEM-{i}" for i in range(5)]
    assert writer.batches == [["first"], [f"item-{i}" for i in range(5)]]


async def test_a_lone_item_is_written_at_once():
    writer = Writer()
    writer.release.set()
    group = GroupCommit("test", writer, max_batch=10)

    assert await group.submit("alone") == "ALONE"
    assert await group.submit("later") == "LATER"
    assert writer.batches == [["alone"], ["later"]]


async def test_batches_respect_the_maximum():
    writer = Writer()
    group = GroupCommit("test", writer, max_batch=2)
    first = await _first_write_in_progress(group, writer)
    rest = [asyncio.create_task(group.submit(f"item-{i}")) for i in range(5)]
    writer.release.set()
    await asyncio.gather(first, *rest)

    assert [len(batch) for batch in writer.batches] == [1, 2, 2, 1]


async def test_a_failing_item_fails_alone_and_the_rest_of_its_batch_succeeds():
    writer = Writer()
    group = GroupCommit("test", writer, max_batch=10)
    first = await _first_write_in_progress(group, writer)
    good_1, bad, good_2 = (asyncio.create_task(group.submit(i)) for i in ("a", "bad", "b"))
    writer.release.set()

    assert (await first, await good_1, await good_2) == ("FIRST", "A", "B")
    with pytest.raises(ValueError, match="bad item"):
        await bad
    assert writer.batches[1:] == [["a", "bad", "b"], ["a"], ["bad"], ["b"]]


async def test_a_caller_that_goes_away_does_not_disturb_the_others():
    writer = Writer()
    group = GroupCommit("test", writer, max_batch=10)
    gone = await _first_write_in_progress(group, writer)  # waiting on its batch's commit
    staying = asyncio.create_task(group.submit("staying"))
    gone.cancel()
    writer.release.set()

    assert await staying == "STAYING"
    assert gone.cancelled()
    assert writer.batches == [["first"], ["staying"]], "its item was written all the same"


async def test_with_two_writers_the_next_batch_does_not_wait_for_a_slow_commit():
    writer = Writer()
    group = GroupCommit("test", writer, max_batch=10, writers=2)
    first = await _first_write_in_progress(group, writer)

    assert await group.submit("second") == "SECOND"  # written while the first still waits
    assert not first.done()
    writer.release.set()
    assert await first == "FIRST"


async def test_when_writing_is_cancelled_no_caller_is_left_waiting():
    async def shut_down(items: Sequence[str]) -> list[str]:
        writer.batches.append(list(items))
        writer.started.set()
        await writer.release.wait()
        raise asyncio.CancelledError  # the server stopping mid-write

    writer = Writer()
    group = GroupCommit("test", shut_down, max_batch=10)
    first = asyncio.create_task(group.submit("first"))
    await writer.started.wait()
    queued = [asyncio.create_task(group.submit(f"item-{i}")) for i in range(3)]
    writer.release.set()

    async with asyncio.timeout(10):  # a guard: broken, the callers would wait forever
        outcomes = await asyncio.gather(first, *queued, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert writer.batches == [["first"]], "nothing queued behind it was written"
