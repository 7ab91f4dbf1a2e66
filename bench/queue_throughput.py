"""Job queue throughput: how fast we defer and process jobs, next to what Postgres can do.

Run from the repository root (takes about a minute on 2 cores):

    .venv/bin/python bench/queue_throughput.py [--jobs N] [--concurrency C]

It uses `DATABASE_URL`'s server when set, else the embedded Postgres in `.data/bench`,
creates a throw-away database, migrates it, and drops it at the end. By default it
defers 2000 jobs one by one, 20000 in batches and drains 5000; `--jobs N` uses N for all.

What is measured, in jobs per second:

1. defer single         one job per tenant unit of work (`uow.jobs.defer` + commit);
2. defer batched        `uow.jobs.defer_many` in batches of 500, one transaction each;
3. defer transactional  as (1), plus one audit row: a state change and its job;
4. processing           the real procrastinate worker (with our middleware) draining N
                        jobs of a no-op task, keeping finished jobs and deleting them.

Why a baseline: raw numbers depend on the machine, the disk and where Postgres runs
(a socket next door or a network hop away). Each measure is paired with the plainest
Postgres work of the same shape on the same database and connection path, so the
ratio says how much the queue itself costs:

- single / transactional: `BEGIN; INSERT one row; COMMIT` per job on one connection;
- batched:                one `INSERT ... SELECT FROM unnest($1)` of 500 rows per transaction;
- processing:             `DELETE ... FOR UPDATE SKIP LOCKED ... RETURNING id`, one row per
                          round trip (the minimal "claim and finish" of a queue).

The baselines use asyncpg as the table owner, with no ORM, no row-level security, no
triggers, and no savepoint: they are floors, not targets.

The rows "same, SQL only" call procrastinate's SQL functions straight through asyncpg
(`procrastinate_defer_jobs_v1` one job per transaction; `procrastinate_fetch_job_v2` then
`procrastinate_finish_job_v1` per job). They split each gap in two: what procrastinate's
schema costs inside Postgres (triggers, event rows, partial indexes) and what our Python
path (SQLAlchemy unit of work, procrastinate worker) adds on top.

Expect run-to-run noise of 10-20%, more on a busy machine: compare ratios, not digits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # without an install

import asyncpg
import procrastinate

from application.ports import JobRequest
from application.tasks import TaskRef
from domain.shops import Shop
from infrastructure.db import migrate
from infrastructure.db.embedded import EmbeddedPostgres
from infrastructure.db.engine import libpq_url
from infrastructure.settings import Settings, load_settings
from interfaces.bootstrap import Container, build_container

REPO = Path(__file__).resolve().parents[1]
NOOP = TaskRef("bench", "noop", "messages")
BATCH = 500
JOB_TABLES = "procrastinate_jobs, procrastinate_events, procrastinate_workers, audit_log"


Work = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Sizes:
    single: int
    batched: int
    processing: int
    concurrency: int


@dataclass(frozen=True)
class Row:
    measure: str
    jobs_per_s: float
    baseline: str
    baseline_per_s: float

    @property
    def ratio(self) -> float:
        return self.jobs_per_s / self.baseline_per_s


# --- the bench task -------------------------------------------------------------------


def bench_blueprints(container: Container) -> dict[str, procrastinate.Blueprint]:
    # procrastinate warns about blueprints made in `__main__`, which a separate worker
    # process could not import; this worker runs in this process, so it does not apply.
    blueprint_log = logging.getLogger("procrastinate.blueprints")
    level = blueprint_log.level
    blueprint_log.setLevel(logging.ERROR)
    try:
        bp = procrastinate.Blueprint()
    finally:
        blueprint_log.setLevel(level)

    @bp.task(name=NOOP.name, queue=NOOP.queue)
    async def noop(**kwargs: Any) -> None:
        return None

    return {NOOP.namespace: bp}


def jobs(count: int) -> list[JobRequest]:
    return [NOOP.job({"i": i, "to": "bench"}) for i in range(count)]


def payloads(count: int) -> list[str]:
    return [json.dumps({"i": i, "to": "bench"}) for i in range(count)]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def rate(label: str, count: int, work: Work) -> float:
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    print(f"  {label:<46} {count:>6} in {elapsed:6.2f}s", file=sys.stderr, flush=True)
    return count / elapsed


# --- database set-up ------------------------------------------------------------------


def server() -> tuple[str, EmbeddedPostgres | None]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    embedded = EmbeddedPostgres(REPO / ".data" / "bench")
    return embedded.admin_url(), embedded


def bench_settings(data_dir: Path) -> Settings:
    """Development settings (secrets generated into `data_dir`), quiet logs."""
    return load_settings(
        {
            "BLOSSOM_ENV": "development",
            "BLOSSOM_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "WARNING",  # INFO would print a JSON line per job
        }
    )


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A throw-away, migrated database on the server; dropped on the way out."""
    name = f"blossom_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(libpq_url(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
            await asyncio.to_thread(migrate.upgrade, url)
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def prepare_owner(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "CREATE TABLE bench_baseline ("
        " id bigserial PRIMARY KEY, payload jsonb, done bool DEFAULT false)"
    )


async def reset(conn: asyncpg.Connection) -> None:
    """Empty queue and baseline tables so every measure starts from the same state."""
    # No ANALYZE here: statistics of an empty table make Postgres cache seq-scan plans
    # (the foreign-key check of procrastinate_events, for one), and every insert then
    # gets slower as the table fills.
    await conn.execute(f"TRUNCATE {JOB_TABLES}, bench_baseline RESTART IDENTITY CASCADE")


async def add_shop(container: Container) -> Shop:
    shop = Shop(
        id=uuid.uuid4(),
        domain=f"bench-{uuid.uuid4().hex[:8]}.myshopify.com",
        name="bench",
        installed_at=datetime.now(UTC),
    )
    async with container.uow.maintenance() as uow:
        created = await uow.shops.add(shop)
        await uow.commit()
    return created


# --- measures through the application's unit of work ----------------------------------


async def defer_single(container: Container, shop: Shop, batch: list[JobRequest]) -> None:
    for job in batch:
        async with container.uow.for_shop(shop.id) as uow:
            await uow.jobs.defer(job)
            await uow.commit()


async def defer_batched(container: Container, shop: Shop, batch: list[JobRequest]) -> None:
    for chunk in chunks(batch, BATCH):
        async with container.uow.for_shop(shop.id) as uow:
            await uow.jobs.defer_many(chunk)
            await uow.commit()


async def defer_with_audit(container: Container, shop: Shop, batch: list[JobRequest]) -> None:
    for job in batch:
        async with container.uow.for_shop(shop.id) as uow:
            await uow.audit.record(action="bench", actor="bench")
            await uow.jobs.defer(job)
            await uow.commit()


async def drain(container: Container, concurrency: int, delete_jobs: str) -> None:
    queues = [NOOP.queue]
    # The production options, with the deletion policy under test in place of the queue's.
    options = {**container.worker_options(queues), "delete_jobs": delete_jobs}
    await container.queue.run_worker_async(
        wait=False,
        install_signal_handlers=False,
        queues=queues,
        concurrency=concurrency,
        **options,
    )


# --- procrastinate's own SQL, called directly: no ORM, no unit of work, no worker ------


async def defer_sql_single(conn: asyncpg.Connection, rows: list[str]) -> None:
    for payload in rows:
        async with conn.transaction():
            await conn.execute(
                "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW($1, $2, 0, NULL, NULL, $3::jsonb,"
                " NULL)::procrastinate_job_to_defer_v1])",
                NOOP.queue,
                NOOP.qualified,
                payload,
            )


async def fetch_finish_sql(conn: asyncpg.Connection, delete_job: bool) -> None:
    worker_id = await conn.fetchval("SELECT procrastinate_register_worker_v1()")
    while job_id := await conn.fetchval(
        "SELECT id FROM procrastinate_fetch_job_v2($1::varchar[], $2)", [NOOP.queue], worker_id
    ):
        await conn.execute(
            "SELECT procrastinate_finish_job_v1($1, 'succeeded', $2)", job_id, delete_job
        )
    await conn.execute("SELECT procrastinate_unregister_worker_v1($1)", worker_id)


# --- baselines: plain asyncpg on a plain table ----------------------------------------


async def insert_single(conn: asyncpg.Connection, rows: list[str]) -> None:
    for payload in rows:
        async with conn.transaction():
            await conn.execute("INSERT INTO bench_baseline (payload) VALUES ($1::jsonb)", payload)


async def insert_batched(conn: asyncpg.Connection, rows: list[str]) -> None:
    for chunk in chunks(rows, BATCH):
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO bench_baseline (payload) SELECT p FROM unnest($1::jsonb[]) AS p",
                list(chunk),
            )


async def claim_one_by_one(conn: asyncpg.Connection) -> None:
    while await conn.fetchval(
        "DELETE FROM bench_baseline WHERE id IN ("
        " SELECT id FROM bench_baseline ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ") RETURNING id"
    ):
        pass


# --- the run --------------------------------------------------------------------------


async def compare(
    owner: asyncpg.Connection, count: int, ours: tuple[str, Work], baseline: tuple[str, Work]
) -> Row:
    """Time `ours` then `baseline`, each from empty tables."""
    await reset(owner)
    ours_rate = await rate(ours[0], count, ours[1])
    await reset(owner)
    baseline_rate = await rate(baseline[0], count, baseline[1])
    return Row(ours[0], ours_rate, baseline[0], baseline_rate)


async def measure_defers(
    container: Container, owner: asyncpg.Connection, shop: Shop, sizes: Sizes
) -> list[Row]:
    one, many = sizes.single, sizes.batched
    await defer_single(container, shop, jobs(100))  # warm the pool and statement caches
    await defer_batched(container, shop, jobs(BATCH))

    def app(defer: Callable[[Container, Shop, list[JobRequest]], Awaitable[None]]) -> Work:
        return partial(defer, container, shop, jobs(many if defer is defer_batched else one))

    per_txn = ("INSERT 1 row/txn", partial(insert_single, owner, payloads(one)))
    per_batch = ("INSERT unnest 500/txn", partial(insert_batched, owner, payloads(many)))
    cases = [
        (one, ("defer single", app(defer_single)), per_txn),
        (one, ("  same, SQL only", partial(defer_sql_single, owner, payloads(one))), per_txn),
        (many, ("defer batched", app(defer_batched)), per_batch),
        (one, ("defer transactional", app(defer_with_audit)), per_txn),
    ]
    return [await compare(owner, count, ours, baseline) for count, ours, baseline in cases]


async def measure_processing(
    container: Container, owner: asyncpg.Connection, shop: Shop, sizes: Sizes
) -> list[Row]:
    count, concurrency = sizes.processing, sizes.concurrency
    await reset(owner)
    await insert_batched(owner, payloads(count))
    baseline = "DELETE SKIP LOCKED 1/trip"
    baseline_rate = await rate(baseline, count, partial(claim_one_by_one, owner))

    cases = [
        (f"processing c={concurrency} delete_jobs=never", "never"),
        (f"processing c={concurrency} delete_jobs=successful", "successful"),
        ("  same, SQL only", "successful"),
    ]
    rows = []
    for label, delete in cases:
        if label.startswith("processing"):
            work = partial(drain, container, concurrency, delete)
        else:
            work = partial(fetch_finish_sql, owner, delete == "successful")
        await reset(owner)
        await defer_batched(container, shop, jobs(count))
        await owner.execute("VACUUM ANALYZE procrastinate_jobs")  # a full table's statistics
        rows.append(Row(label, await rate(label, count, work), baseline, baseline_rate))
        await check_drained(owner, count, delete)
    return rows


async def check_drained(owner: asyncpg.Connection, count: int, delete_jobs: str) -> None:
    # Only our queue: the worker's periodic deferrer also queues maintenance jobs.
    left = await owner.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = $1 AND status <> 'succeeded'",
        NOOP.queue,
    )
    done = await owner.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = $1", NOOP.queue
    )
    expected = 0 if delete_jobs == "successful" else count
    if left or done != expected:
        raise RuntimeError(f"worker left {left} unfinished jobs, {done} rows (expected {expected})")


async def run(sizes: Sizes) -> None:
    server_url, embedded = server()
    async with fresh_database(server_url) as url:
        owner = await asyncpg.connect(libpq_url(url))
        try:
            await describe(owner, embedded is not None)
            await prepare_owner(owner)
            rows = await run_measures(url, owner, sizes)
        finally:
            await owner.close()
    print_table(rows)
    del embedded  # keeps the embedded server up until the database is dropped


async def run_measures(url: str, owner: asyncpg.Connection, sizes: Sizes) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp))
        container = build_container(settings, database_url=url, extra_blueprints=bench_blueprints)
        try:
            shop = await add_shop(container)
            rows = await measure_defers(container, owner, shop, sizes)
            async with container.queue.open_async():
                rows += await measure_processing(container, owner, shop, sizes)
            return rows
        finally:
            await container.aclose()


async def describe(owner: asyncpg.Connection, embedded: bool) -> None:
    version = await owner.fetchval("SELECT version()")
    where = "embedded (pgserver, Unix socket)" if embedded else "external (DATABASE_URL)"
    print(f"Postgres:  {version}")
    print(f"Server:    {where}")
    print(f"CPUs:      {os.cpu_count()}")
    print(f"Python:    {sys.version.split()[0]}, procrastinate {procrastinate.__version__}")
    print(flush=True)  # before the progress lines on stderr


def print_table(rows: list[Row]) -> None:
    first = max(len(r.measure) for r in rows)
    second = max(len(r.baseline) for r in rows)
    print(f"{'measure':<{first}}  {'jobs/s':>8}  {'baseline':<{second}}  {'base/s':>8}  ratio")
    print("-" * (first + second + 31))
    for r in rows:
        print(
            f"{r.measure:<{first}}  {r.jobs_per_s:>8,.0f}  {r.baseline:<{second}}  "
            f"{r.baseline_per_s:>8,.0f}  {r.ratio:5.2f}"
        )


def parse_args(argv: Sequence[str] | None = None) -> Sizes:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        type=int,
        help="jobs per measure (default: 2000 single/transactional, "
        "20000 batched, 5000 processing)",
    )
    parser.add_argument("--concurrency", type=int, default=1, help="worker concurrency")
    args = parser.parse_args(argv)
    if args.jobs:
        return Sizes(args.jobs, args.jobs, args.jobs, args.concurrency)
    return Sizes(2000, 20000, 5000, args.concurrency)


def main() -> None:
    sizes = parse_args()
    started = time.perf_counter()
    asyncio.run(run(sizes))
    print(f"\nTotal wall time: {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
