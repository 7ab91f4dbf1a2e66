"""GCRA rate limits on Postgres: bursts, costs, concurrency, refill and pruning.

Elapsed time is simulated by moving a key's TAT back, never by sleeping. The first
tests need no database: they check what is refused before any SQL runs.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from application.ports import RateDecision, RateLimit
from application.tasks import PRUNE_RATE_LIMITS
from infrastructure.db.engine import create_app_engine, session_factory
from infrastructure.ratelimit import PostgresRateLimiter, limit_name
from tests.support.queue import drain

HOUR = 3600.0  # a period long enough that nothing refills while a test runs


def _no_database():
    raise AssertionError("this decision must not touch the database")


# --- no database --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "cost"),
    [
        (RateLimit(rate=0, period_seconds=1, burst=1), 1),
        (RateLimit(rate=-1, period_seconds=1, burst=1), 1),
        (RateLimit(rate=1, period_seconds=0, burst=1), 1),
        (RateLimit(rate=1, period_seconds=-1, burst=1), 1),
        (RateLimit(rate=1, period_seconds=math.inf, burst=1), 1),
        (RateLimit(rate=1, period_seconds=math.nan, burst=1), 1),
        (RateLimit(rate=1, period_seconds=1, burst=0), 1),
        (RateLimit(rate=1, period_seconds=1, burst=1), 0),
        (RateLimit(rate=1, period_seconds=1, burst=1), -3),
        (RateLimit(rate=10_000_000, period_seconds=1, burst=1), 1),  # T under 1 µs
    ],
)
async def test_invalid_limits_and_costs_are_refused(limit, cost):
    limiter = PostgresRateLimiter(_no_database)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await limiter.acquire("test:k", limit, cost)


async def test_prune_refuses_a_negative_age():
    with pytest.raises(ValueError):
        await PostgresRateLimiter(_no_database).prune(-1)  # type: ignore[arg-type]


async def test_cost_above_burst_is_denied_without_sql_and_counted():
    limiter = PostgresRateLimiter(_no_database)  # type: ignore[arg-type]
    labels = {"name": "test-oversize", "decision": "denied"}
    before = REGISTRY.get_sample_value("blossom_rate_limit_decisions_total", labels) or 0.0

    decision = await limiter.acquire("test-oversize:10.0.0.1", RateLimit(5, 1, 5), cost=6)

    assert decision == RateDecision(allowed=False, retry_after_seconds=math.inf, remaining=0)
    assert REGISTRY.get_sample_value("blossom_rate_limit_decisions_total", labels) == before + 1


def test_metric_name_is_the_prefix_and_never_a_bare_key():
    assert limit_name("signup:shop-1:10.0.0.1") == "signup"
    assert limit_name("10.0.0.1") == "unnamed"
    assert limit_name(":oops") == "unnamed"


# --- Postgres ---------------------------------------------------------------------


@pytest.fixture
async def limiter(clean_db, container) -> PostgresRateLimiter:
    # clean_db does not know this table; start every test from an empty one.
    async with container.sessions() as session:
        await session.execute(text("DELETE FROM rate_limits"))
        await session.commit()
    return PostgresRateLimiter(container.sessions)


def _key(name: str = "test") -> str:
    return f"{name}:{uuid.uuid4().hex}"


async def _tat(container, key: str) -> datetime | None:
    async with container.sessions() as session:
        row = await session.execute(text("SELECT tat FROM rate_limits WHERE key = :k"), {"k": key})
        return row.scalar_one_or_none()


async def _shift(container, key: str, seconds: float) -> None:
    """Pretend `seconds` went by for this key: move its TAT back."""
    async with container.sessions() as session:
        await session.execute(
            text("UPDATE rate_limits SET tat = tat - make_interval(secs => :s) WHERE key = :k"),
            {"s": seconds, "k": key},
        )
        await session.commit()


async def test_burst_passes_then_the_next_is_denied_for_one_interval(limiter):
    limit = RateLimit(rate=5, period_seconds=10, burst=5)  # T = 2 s
    key = _key()

    decisions = [await limiter.acquire(key, limit) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert all(d.retry_after_seconds == 0 for d in decisions[:5])
    # The 6th fits once the first event's interval has passed: within T of the first call.
    assert 0 < decisions[5].retry_after_seconds <= 2.0 + 1e-6


async def test_a_cost_takes_its_tokens_at_once_or_not_at_all(limiter, container):
    limit = RateLimit(rate=10, period_seconds=HOUR, burst=10)
    key = _key()

    first = await limiter.acquire(key, limit, cost=7)
    tat_after_first = await _tat(container, key)
    too_many = await limiter.acquire(key, limit, cost=4)
    rest = await limiter.acquire(key, limit, cost=3)

    assert (first.allowed, first.remaining) == (True, 3)
    assert not too_many.allowed and too_many.retry_after_seconds > 0
    assert (rest.allowed, rest.remaining) == (True, 0)
    assert tat_after_first is not None
    # The denied request wrote nothing: the last TAT is exactly 3 intervals further.
    assert (await _tat(container, key) - tat_after_first).total_seconds() == 3 * HOUR / 10


async def test_cost_above_burst_writes_no_row(limiter, container):
    key = _key()

    decision = await limiter.acquire(key, RateLimit(rate=5, period_seconds=1, burst=5), cost=6)

    assert not decision.allowed and decision.retry_after_seconds == math.inf
    assert await _tat(container, key) is None


async def test_keys_are_independent(limiter):
    limit = RateLimit(rate=2, period_seconds=HOUR, burst=2)
    busy, other = _key(), _key()

    for _ in range(2):
        assert (await limiter.acquire(busy, limit)).allowed
    assert not (await limiter.acquire(busy, limit)).allowed

    decision = await limiter.acquire(other, limit)
    assert (decision.allowed, decision.remaining) == (True, 1)


async def test_concurrent_acquires_never_exceed_the_burst(limiter, container):
    limit = RateLimit(rate=20, period_seconds=HOUR, burst=20)
    key = _key()

    decisions = await asyncio.gather(*(limiter.acquire(key, limit) for _ in range(50)))

    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 20
    # Serialised on the row: each allowed decision saw a different number of tokens left.
    assert sorted(d.remaining for d in allowed) == list(range(20))
    assert all(d.retry_after_seconds > 0 for d in decisions if not d.allowed)


async def test_a_denied_key_passes_again_after_retry_after(limiter, container):
    limit = RateLimit(rate=5, period_seconds=10, burst=5)
    key = _key()
    for _ in range(5):
        assert (await limiter.acquire(key, limit)).allowed
    denied = await limiter.acquire(key, limit)
    assert not denied.allowed

    await _shift(container, key, denied.retry_after_seconds)
    retried = await limiter.acquire(key, limit)
    assert (retried.allowed, retried.remaining) == (True, 0)

    await _shift(container, key, 10)  # a whole period: the bucket is full again
    refilled = await limiter.acquire(key, limit)
    assert (refilled.allowed, refilled.remaining) == (True, 4)


async def test_reset_gives_a_full_bucket(limiter):
    limit = RateLimit(rate=1, period_seconds=HOUR, burst=1)
    key = _key()
    assert (await limiter.acquire(key, limit)).allowed
    assert not (await limiter.acquire(key, limit)).allowed

    assert await limiter.reset(key) is True
    assert (await limiter.acquire(key, limit)).allowed
    assert await limiter.reset(_key()) is False


async def test_prune_deletes_only_keys_idle_for_longer_than_asked(limiter, container):
    limit = RateLimit(rate=1, period_seconds=1, burst=1)  # each acquire puts TAT 1 s ahead
    stale, idle, live = _key(), _key(), _key()
    for key in (stale, idle, live):
        assert (await limiter.acquire(key, limit)).allowed
    await _shift(container, stale, 2 * HOUR)  # TAT about 2 h in the past
    await _shift(container, idle, 60)  # TAT about 1 min in the past

    assert await limiter.prune() == 1
    assert await _tat(container, stale) is None
    assert await _tat(container, idle) is not None

    assert await limiter.prune(older_than_seconds=0) == 1
    assert await _tat(container, idle) is None
    assert await _tat(container, live) is not None


async def test_idle_keys_are_pruned_by_a_periodic_maintenance_task(limiter, container):
    # Install links and storefront forms make a key per caller, unauthenticated: unless a
    # worker prunes on its own, the table only ever grows.
    periodic = container.queue.periodic_registry.periodic_tasks.values()
    assert PRUNE_RATE_LIMITS.qualified in {p.task.name for p in periodic}
    limit = RateLimit(rate=1, period_seconds=1, burst=1)
    stale, live = _key(), _key()
    for key in (stale, live):
        assert (await limiter.acquire(key, limit)).allowed
    await _shift(container, stale, 2 * HOUR)

    async with container.uow.maintenance() as uow:
        await uow.jobs.defer(PRUNE_RATE_LIMITS.job())
        await uow.commit()
    await drain(container, PRUNE_RATE_LIMITS.queue)

    assert await _tat(container, stale) is None
    assert await _tat(container, live) is not None


async def test_a_decision_survives_the_callers_rollback(limiter, container):
    limit = RateLimit(rate=1, period_seconds=HOUR, burst=1)
    key = _key()

    async with container.sessions() as caller:
        await caller.execute(text("SELECT 1"))  # the caller has a transaction open
        assert (await limiter.acquire(key, limit)).allowed
        await caller.rollback()

    assert await _tat(container, key) is not None
    assert not (await limiter.acquire(key, limit)).allowed


async def test_autocommit_does_not_leak_into_the_pooled_connection(clean_db, database_url):
    # One pooled connection, reused: after the limiter returns it, the next session
    # must be transactional again (its rollback really rolls back).
    engine = create_app_engine(database_url, pool_size=1)
    sessions = session_factory(engine)
    key = _key()
    try:
        await PostgresRateLimiter(sessions).acquire(key, RateLimit(1, HOUR, 1))
        async with sessions() as session:
            await session.execute(text("DELETE FROM rate_limits WHERE key = :k"), {"k": key})
            await session.rollback()
        async with sessions() as session:
            found = await session.execute(
                text("SELECT count(*) FROM rate_limits WHERE key = :k"), {"k": key}
            )
            assert found.scalar_one() == 1
    finally:
        await engine.dispose()
