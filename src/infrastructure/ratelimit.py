"""Rate limits as GCRA on Postgres: one upsert per decision on the UNLOGGED `rate_limits`.

GCRA keeps one timestamp per key, the theoretical arrival time (TAT): when the
bucket would be full again. With emission interval T = period / rate, a request of
`cost` events moves it to max(TAT, now) + cost*T, and passes iff that is at most
burst*T ahead of now. The read, the check and the write are one
`INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`: the row lock taken by the
upsert serialises concurrent deciders, so a key never hands out more than its burst.

Every statement runs in autocommit: it is its own transaction, committed by the
server, so a decision never joins a caller's transaction (a rollback there cannot undo
a token taken) and the allowed path is a single round trip.

Keys are chosen by callers and may hold IPs or ids: they are never logged and never
become metric labels; only their prefix before the first `:` does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from application.ports import RateDecision, RateLimit
from infrastructure.telemetry.metrics import RATE_LIMIT_DECISIONS

log = logging.getLogger("blossom.ratelimit")

# `now` is read once (the CTE is evaluated once) so the check and the stored TAT agree;
# clock_timestamp(), not now(), since now() is frozen at the start of a transaction.
# A new key takes the INSERT path unchecked: `acquire` denies cost > burst before this.
# No row returned means the WHERE failed: denied, and nothing was written.
_ACQUIRE = text(
    """
    WITH clock AS MATERIALIZED (SELECT clock_timestamp() AS now)
    INSERT INTO rate_limits AS r (key, tat)
    SELECT :key, clock.now + CAST(:increment AS interval) FROM clock
    ON CONFLICT (key) DO UPDATE
       SET tat = greatest(r.tat, (SELECT now FROM clock)) + CAST(:increment AS interval)
     WHERE greatest(r.tat, (SELECT now FROM clock)) + CAST(:increment AS interval)
           <= (SELECT now FROM clock) + CAST(:burst_window AS interval)
    RETURNING r.tat, (SELECT now FROM clock) AS now
    """
)
# Only on the denied path, to say how long to wait; a separate statement so the upsert's
# row lock is already released (a hot key's deniers must not queue behind each other).
_CURRENT = text("SELECT tat, clock_timestamp() AS now FROM rate_limits WHERE key = :key")
_RESET = text("DELETE FROM rate_limits WHERE key = :key")
# A TAT in the past means a full bucket, exactly like no row: deleting it loses nothing.
_PRUNE = text("DELETE FROM rate_limits WHERE tat < clock_timestamp() - CAST(:age AS interval)")

_UNNAMED = "unnamed"


@dataclass(frozen=True, slots=True)
class _Plan:
    """A limit and cost in the database's units (whole microseconds, like timestamptz)."""

    interval: timedelta  # T: the time one event "costs"
    increment: timedelta  # cost * T
    burst_window: timedelta  # burst * T: how far ahead of now the TAT may run


def _plan(limit: RateLimit, cost: int) -> _Plan:
    if limit.rate <= 0:
        raise ValueError("rate must be positive")
    if not (limit.period_seconds > 0 and math.isfinite(limit.period_seconds)):
        raise ValueError("period_seconds must be positive and finite")
    if limit.burst < 1:
        raise ValueError("burst must be at least 1")
    if cost < 1:
        raise ValueError("cost must be at least 1")
    # Integer microseconds so that burst*T and cost*T are exact multiples of T, and
    # `remaining` never loses an event to float rounding.
    micros = round(limit.period_seconds * 1_000_000 / limit.rate)
    if micros < 1:
        raise ValueError("rate / period is finer than the database clock (1 microsecond)")
    interval = timedelta(microseconds=micros)
    return _Plan(interval=interval, increment=interval * cost, burst_window=interval * limit.burst)


def limit_name(key: str) -> str:
    """The metric label for a key: its prefix before the first `:`.

    A key without one could be a bare IP or id, so it is counted as `unnamed` rather
    than becoming a label (unbounded cardinality, personal data in metrics).
    """
    name, sep, _ = key.partition(":")
    return name if sep and name else _UNNAMED


def _allowed(plan: _Plan, tat: datetime, now: datetime) -> RateDecision:
    headroom = plan.burst_window - (tat - now)
    return RateDecision(
        allowed=True, retry_after_seconds=0.0, remaining=max(0, headroom // plan.interval)
    )


def _denied(plan: _Plan, current: tuple[datetime, datetime] | None) -> RateDecision:
    if current is None:  # the row went away meanwhile: nothing to wait for
        return RateDecision(allowed=False, retry_after_seconds=0.0, remaining=0)
    tat, now = current
    # The request fits once max(tat, now) + cost*T - now has shrunk to the burst window.
    wait = max(tat, now) + plan.increment - plan.burst_window - now
    return RateDecision(
        allowed=False, retry_after_seconds=max(wait, timedelta(0)).total_seconds(), remaining=0
    )


class PostgresRateLimiter:
    """The `RateLimiter` port on the `rate_limits` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def acquire(self, key: str, limit: RateLimit, cost: int = 1) -> RateDecision:
        plan = _plan(limit, cost)
        if plan.increment > plan.burst_window:
            # More than a full bucket can never pass; answer without touching the table.
            decision = RateDecision(allowed=False, retry_after_seconds=math.inf, remaining=0)
        else:
            decision = await self._decide(key, plan)
        self._record(key, decision)
        return decision

    async def reset(self, key: str) -> bool:
        """Forget the key (a full bucket again); False when it had no state."""
        async with self._autocommit() as session:
            result = await session.execute(_RESET, {"key": key})
        return bool(result.rowcount)

    async def prune(self, older_than_seconds: float = 3600) -> int:
        """Delete keys idle (TAT in the past) for longer than that; returns how many."""
        if not older_than_seconds >= 0:
            raise ValueError("older_than_seconds must not be negative")
        async with self._autocommit() as session:
            result = await session.execute(_PRUNE, {"age": timedelta(seconds=older_than_seconds)})
        return int(result.rowcount)

    async def _decide(self, key: str, plan: _Plan) -> RateDecision:
        params = {"key": key, "increment": plan.increment, "burst_window": plan.burst_window}
        async with self._autocommit() as session:
            row = (await session.execute(_ACQUIRE, params)).first()
            if row is not None:
                return _allowed(plan, row.tat, row.now)
            current = (await session.execute(_CURRENT, {"key": key})).first()
        return _denied(plan, (current.tat, current.now) if current is not None else None)

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncSession]:
        # asyncpg's autocommit is client-side: no BEGIN/COMMIT round trips; the pool puts
        # the connection's isolation level back when the session returns it.
        async with self._sessions() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session

    @staticmethod
    def _record(key: str, decision: RateDecision) -> None:
        outcome = "allowed" if decision.allowed else "denied"
        name = limit_name(key)
        RATE_LIMIT_DECISIONS.labels(name=name, decision=outcome).inc()
        if not decision.allowed:
            log.debug("rate limit %s denied, retry in %.3fs", name, decision.retry_after_seconds)
