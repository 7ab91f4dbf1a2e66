"""Group commit: concurrent callers' items written together, one transaction per batch.

Under a burst, each caller waiting on its own commit costs a transaction, a round trip and
the database session overhead per item; here whatever arrived while one batch was being
written becomes the next batch. There is no timer: a lone item is written at once, and an
item waits at most for the batch ahead of it. Each caller still gets its own result, and
its answer goes out only after its batch committed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from opentelemetry import trace

from infrastructure.telemetry.metrics import GROUP_COMMIT_BATCH
from infrastructure.telemetry.tracing import open_span

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("blossom.group_commit")


@dataclass(slots=True)
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    span: trace.SpanContext


class GroupCommit(Generic[T, R]):
    """`write` takes a batch and returns one result per item, in order, or raises. Up to
    `writers` batches are written at once, so one batch's commit does not hold up the next."""

    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int,
        writers: int = 1,
    ) -> None:
        self._name = name
        self._write = write
        self._max_batch = max_batch
        self._max_writers = writers
        self._waiting: deque[_Waiting[T, R]] = deque()
        self._writers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, future, trace.get_current_span().get_span_context()))
        if len(self._writers) < self._max_writers:
            # A context of its own: batches belong to no single caller's trace or request.
            self._writers.add(asyncio.create_task(self._drain(), context=contextvars.Context()))
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                count = min(len(self._waiting), self._max_batch)
                await self._flush([self._waiting.popleft() for _ in range(count)])
        except BaseException:
            # Cancelled (shutdown): nobody may wait for a batch that will not be written.
            while self._waiting:
                self._waiting.popleft().future.cancel()
            raise
        finally:
            # At once, not in a done-callback: an item queued in between would find every
            # writer slot taken by a writer that has already stopped looking.
            self._writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _flush(self, batch: list[_Waiting[T, R]]) -> None:
        GROUP_COMMIT_BATCH.labels(self._name).observe(len(batch))
        links = [trace.Link(waiting.span) for waiting in batch if waiting.span.is_valid]
        try:
            with open_span(
                f"group commit {self._name}", links=links, attributes={"batch.size": len(batch)}
            ):
                results = await self._write([waiting.item for waiting in batch])
        except Exception as exc:
            if len(batch) > 1:
                # One bad item must not fail the rest: each is written alone.
                log.warning(
                    "%s batch failed, writing its %d items one by one", self._name, len(batch)
                )
                for waiting in batch:
                    await self._flush([waiting])
                return
            _settle(batch[0].future, exc)
            return
        except BaseException:
            for waiting in batch:
                waiting.future.cancel()
            raise
        for waiting, result in zip(batch, results, strict=True):
            _settle(waiting.future, result)


def _settle(future: asyncio.Future[R], outcome: R | Exception) -> None:
    if future.done():  # its caller went away (cancelled); the item was written regardless
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
