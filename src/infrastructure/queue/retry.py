"""Our retry strategy: exponential backoff with full jitter, a cap and bounded attempts.

procrastinate's own strategy has neither jitter nor cap. Permanent errors fail at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.jobs import Job

from application.errors import PermanentError
from domain.errors import DomainError

_PERMANENT: tuple[type[BaseException], ...] = (PermanentError, DomainError)


@dataclass(frozen=True)
class BackoffRetry(BaseRetryStrategy):
    max_attempts: int = 8
    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2**attempt))
        return ceiling * self.rand()

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, _PERMANENT) or job.attempts + 1 >= self.max_attempts:
            return None
        return RetryDecision(retry_in={"seconds": self.delay(job.attempts)})


DEFAULT_RETRY = BackoffRetry()
