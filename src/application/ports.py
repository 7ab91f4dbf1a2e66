"""Ports: what the use cases need from the outside world, said as Protocols.

Adapters in `infrastructure` implement them; unit tests use in-memory fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from domain.shops import Shop


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> uuid.UUID:
        """A new time-ordered (v7) identifier."""
        ...


class Cipher(Protocol):
    """Authenticated encryption of PII and secrets at rest, with rotating keys."""

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt under the newest key; `context` is bound as associated data."""
        ...

    def decrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt with whichever ring key the token names."""
        ...

    def needs_rotation(self, token: str) -> bool:
        """True when `token` was not encrypted under the newest key."""
        ...

    def reencrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt and encrypt again under the newest key."""
        ...


class BlindIndex(Protocol):
    """A keyed, deterministic digest used to look up encrypted values."""

    def digest(self, normalized_value: str, *, purpose: str) -> str: ...


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job to defer. `args` must be JSON-serializable."""

    task: str
    queue: str
    args: Mapping[str, Any] = field(default_factory=dict)
    lock: str | None = None
    queueing_lock: str | None = None
    priority: int = 0
    scheduled_at: datetime | None = None


class JobQueue(Protocol):
    """Defers jobs inside the caller's transaction: they exist only if it commits."""

    async def defer(self, job: JobRequest) -> int | None:
        """Return the job id, or None when its queueing lock already holds a job."""
        ...

    async def defer_many(self, jobs: Sequence[JobRequest]) -> list[int]:
        """Defer all jobs in one statement; return their ids in order."""
        ...


class ShopRepository(Protocol):
    async def get(self, shop_id: uuid.UUID) -> Shop | None: ...

    async def get_by_domain(self, domain: str) -> Shop | None: ...

    async def add(self, shop: Shop) -> Shop: ...

    async def list(self) -> list[Shop]: ...


class AuditLog(Protocol):
    async def record(
        self,
        *,
        action: str,
        actor: str,
        subject: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction, scoped to one shop (or the explicit maintenance path).

    Leaving the context without `commit()` rolls everything back, jobs included.
    """

    shops: ShopRepository
    audit: AuditLog
    jobs: JobQueue

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


@dataclass(frozen=True, slots=True)
class JobFailure:
    job_id: int
    task: str
    queue: str
    attempt: int
    error_type: str
    error: str
    traceback_digest: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class JobSummary:
    id: int
    task: str
    queue: str
    status: str
    attempts: int
    scheduled_at: datetime | None
    args: Mapping[str, Any]
    last_failure: JobFailure | None = None


class JobAdmin(Protocol):
    """Operations over the queue itself: the dead-letter view and recovery."""

    async def list_jobs(
        self, *, status: str, queue: str | None, limit: int
    ) -> list[JobSummary]: ...

    async def get_job(self, job_id: int) -> JobSummary | None: ...

    async def failures(self, job_id: int) -> list[JobFailure]: ...

    async def retry(self, job_id: int) -> bool:
        """Put a failed job back in the queue; False when it is not failed."""
        ...

    async def cancel(self, job_id: int) -> bool:
        """Cancel a job that has not started; False when it cannot be cancelled."""
        ...

    async def stalled_job_ids(self, *, seconds_since_heartbeat: float) -> list[int]: ...

    async def requeue_stalled(self, job_id: int) -> None: ...

    async def prune_finished(self, *, older_than_hours: int) -> None: ...

    async def queue_depth(self) -> list[tuple[str, str, int]]:
        """(queue, status, count) for jobs waiting or running."""
        ...
