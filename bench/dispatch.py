"""Message dispatch: queue 100,000 texts through `QueueMessages`, deliver them to a fake Mitto.

Run from the repository root (about three minutes on 2 cores):

    .venv/bin/python bench/dispatch.py [--contacts N] [--messages M] [--batch B]
                                       [--workers W] [--concurrency C] [--profile]

It uses `DATABASE_URL`'s server when set, else the embedded Postgres in `.data/bench`
(through `queue_throughput.py`'s helpers), creates a throw-away database, migrates it, and
drops it at the end. One shop, N subscribed US contacts (10,000) and a wallet funded for
every message; then M messages (100,000), each contact getting M/N of them.

The messages are transactional order updates ("Your order #1042 has shipped ..."), one GSM
segment each, with an idempotency key and a dedupe key per order, as an order automation
would send them. Transactional texts skip quiet hours by default and the marketing cap does
not count them, so the clock and the recipients' time zones cannot hold any back: every
message is queued to be sent now, and each has its own contact, number and reference.

Measures:

1. queueing   `QueueMessages` for all M messages in batches of B (500), one unit of work and
              commit per batch (shop read, advisory locks, idempotency and dedupe look-ups,
              recipients with their phone decrypted, wallet reservation, encrypted insert,
              delivery jobs deferred), in this process; messages/s and per-batch p50/p99.
              `--queue-concurrency 2` runs two batches at once: they are the same shop's, so
              they serialise on its wallet row from the reservation to the commit.
2. fake alone a minimal keep-alive HTTP/1.1 client (`webhook_ingress.RawPool`, 20
              connections) posting valid sends to the fake: what the fake can take here.
3. gateway    `MittoSmsGateway.send` (the adapter the worker uses: httpx, 20 connections,
              32 sends in flight like `DeliveryLimits.concurrency`) to the fake, no
              database: what one worker process's HTTP path can do at most.
4. delivery   W real `blossom worker --queues messages --concurrency C` processes (1 and 4)
              against the fake Mitto, from the moment a worker registers until every
              message is `sent` (polled twice a second as the table owner); messages/s.

The fake Mitto (`FakeMitto`, uvicorn on uvloop) runs in a process of its own, started by
this script with `--serve-fake`; it answers `counts` and `references` on its stdin. After the
delivery the bench checks, on the provider side, that it accepted every message's reference
exactly once (none missing, none twice), and on ours that every message is `sent`, the
wallet holds nothing reserved and no delivery job is left.

Rate limits are off (`SMS_RATE_PER_SECOND=0`, `SMS_SHOP_RATE_PER_SECOND=0`) so the limiter
does not set the pace. The workers log at INFO so that their "delivery batch done" lines
count the delivery jobs that ran (procrastinate deletes the messages queue's finished jobs).

`--profile` runs the queueing under cProfile in this process, and the workers under
`python -m cProfile`, and prints each side's top functions; the figures are then slower
(the profiler costs CPU) and only the profile is worth reading.

Caveats: everything shares the machine's cores: this process (queueing, then polling),
Postgres, the fake and the workers. Each run prints the CPU that every side used, in percent
of one core, and the load average before the run shows whether something else was busy.
Expect run-to-run noise of 10-20%.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import hashlib
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # without an install

import asyncpg
import psutil
from queue_throughput import fresh_database, server
from webhook_ingress import RawPool, percentile

from application.billing.fund_wallet import TopUpWallet
from application.messaging.queue_messages import DELIVERY_BATCH, OutgoingMessage
from application.ports import OutboundSms
from domain.billing import estimate
from domain.consent import ConsentSource, ConsentState, next_event
from domain.contacts import Contact
from domain.messages import MessageCategory, MessageStatus
from domain.shops import Shop
from infrastructure.db.engine import libpq_url
from infrastructure.mitto.fake_server import FakeMitto
from infrastructure.mitto.gateway import MittoSmsGateway
from infrastructure.settings import load_settings
from interfaces.bootstrap import Container, build_container

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
BLOSSOM = REPO / ".venv" / "bin" / "blossom"
MITTO_KEY = "bench-mitto-key"
CALLBACK_SECRET = "bench-callback-secret"
ENCRYPTION_KEYS = "bench1:" + base64.b64encode(hashlib.sha256(b"bench-cipher").digest()).decode()
BLIND_INDEX_KEY = base64.b64encode(hashlib.sha256(b"bench-blind-index").digest()).decode()
WORDING = "Order updates from Blossom Botanicals by text. Reply STOP to opt out."
SEED_CHUNK = 1000
POLL_SECONDS = 0.5
READY_TIMEOUT_SECONDS = 60.0
DELIVERY_TIMEOUT_SECONDS = 1800.0
PROGRESS_SECONDS = 10.0
GATEWAY_IN_FLIGHT = 32  # DeliveryLimits.concurrency
GATEWAY_POOL = 20  # MittoSmsGateway's default max_connections
TARGET_QUEUE = 5000.0
TARGET_DELIVERY = 1000.0
TEMPLATES = (
    "Your order #{order} has shipped! Track it here: https://blossom.example/t/{code}",
    "Good news: order #{order} is out for delivery today. Questions? Reply HELP.",
    "We received your order #{order}, thank you! We will text you when it ships.",
    "Order #{order} was delivered. We hope you love your flowers!",
)


@dataclass(frozen=True)
class Options:
    contacts: int
    messages: int
    batch: int
    workers: int
    concurrency: int
    queue_concurrency: int
    baseline_sends: int
    profile: bool


# --- CPU per side -----------------------------------------------------------------------


@dataclass
class CpuMeter:
    """CPU seconds per side (named process trees, plus all local `postgres` processes) since
    the meter started, in percent of one core. A process that exits before `shares()` is
    missed, so call it before stopping what was measured."""

    sides: dict[str, list[int]]
    start: dict[tuple[str, int], float] = field(default_factory=dict)
    wall: float = 0.0

    def __post_init__(self) -> None:
        self.start, self.wall = self.sample(), time.perf_counter()

    def sample(self) -> dict[tuple[str, int], float]:
        seconds: dict[tuple[str, int], float] = {}
        for side, pids in self.sides.items():
            for pid in pids:
                for process in _tree(pid):
                    seconds[(side, process.pid)] = _cpu(process)
        for process in psutil.process_iter(["name"]):
            if process.info.get("name") == "postgres":
                seconds[("postgres", process.pid)] = _cpu(process)
        return seconds

    def shares(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.wall
        used: Counter[str] = Counter()
        for (side, pid), seconds in self.sample().items():
            used[side] += max(0.0, seconds - self.start.get((side, pid), 0.0))
        return {side: 100 * seconds / elapsed for side, seconds in used.items()}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return times.user + times.system
    return 0.0


def cpu_line(shares: dict[str, float], order: Sequence[str]) -> str:
    return ", ".join(f"{side} {shares.get(side, 0.0):.0f}%" for side in order)


# --- the fake Mitto, in a process of its own -------------------------------------------


async def serve_fake() -> None:
    """`--serve-fake`: print the fake's base URL, then answer commands read on stdin
    (`counts`, `references`, `reset`) with one JSON line each; stop at end of input."""
    async with FakeMitto(MITTO_KEY) as fake:
        print(fake.base_url, flush=True)
        while command := (await asyncio.to_thread(sys.stdin.readline)).strip():
            answer: Any
            if command == "counts":
                by_reference = fake.accepted_by_reference
                answer = {
                    "accepted": len(fake.accepted),
                    "references": len(by_reference),
                    "duplicates": sum(n - 1 for n in by_reference.values() if n > 1),
                    "calls": dict(fake.calls),
                    "codes": {str(code): n for code, n in fake.response_codes.items()},
                }
            elif command == "references":
                answer = list(fake.accepted_by_reference)
            elif command == "reset":
                fake.reset()
                answer = "ok"
            else:
                answer = f"unknown command {command!r}"
            print(json.dumps(answer), flush=True)


class FakeProcess:
    def __init__(self, log: Path) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--serve-fake"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.base_url = self._line()

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"the fake Mitto did not start: {self.process.wait()}")
        return line

    async def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        self.process.stdin.flush()
        return json.loads(await asyncio.to_thread(self._line))

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@contextlib.contextmanager
def fake_mitto(tmp: Path) -> Iterator[FakeProcess]:
    fake = FakeProcess(tmp / "fake.log")
    try:
        yield fake
    finally:
        fake.stop()


# --- settings, shop, contacts, wallet ---------------------------------------------------


def bench_env(database_url: str, data_dir: Path, fake_url: str) -> dict[str, str]:
    """What this process and the workers share: same keys, so workers decrypt our texts."""
    return {
        **os.environ,
        "BLOSSOM_ENV": "development",
        "BLOSSOM_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
        "BLIND_INDEX_KEY": BLIND_INDEX_KEY,
        "MITTO_API_KEY": MITTO_KEY,
        "MITTO_BASE_URL": fake_url,
        "MITTO_WEBHOOK_SECRET": CALLBACK_SECRET,
        "SMS_RATE_PER_SECOND": "0",
        "SMS_SHOP_RATE_PER_SECOND": "0",
        "LOG_LEVEL": "WARNING",
        "OTEL_TRACES_EXPORTER": "none",
    }


async def add_shop(container: Container) -> Shop:
    shop = Shop(
        id=uuid.uuid4(),
        domain=f"bench-{uuid.uuid4().hex[:8]}.myshopify.com",
        name="Blossom Botanicals",
        installed_at=datetime.now(UTC),
    )
    async with container.uow.maintenance() as uow:
        created = await uow.shops.add(shop)
        await uow.commit()
    return created


def phone_number(n: int) -> str:
    """Distinct, valid US numbers (San Francisco area code, 2xx exchanges)."""
    return f"+1415{2_000_000 + n:07d}"


async def add_contacts(
    container: Container,
    shop: Shop,
    numbers: range,
    state: ConsentState = ConsentState.SUBSCRIBED,
) -> list[uuid.UUID]:
    """Contacts with their consent in the ledger, SEED_CHUNK per transaction."""
    ids: list[uuid.UUID] = []
    now = datetime.now(UTC)
    for start in range(numbers.start, numbers.stop, SEED_CHUNK):
        contacts = [
            Contact(
                id=uuid.uuid4(),
                shop_id=shop.id,
                phone=phone_number(n),
                country="US",
                timezone="America/Los_Angeles",
                consent_state=state,
                consent_updated_at=now,
            )
            for n in range(start, min(numbers.stop, start + SEED_CHUNK))
        ]
        events = [
            next_event(
                None,
                contact_id=c.id,
                current_state=ConsentState.UNKNOWN,
                new_state=state,
                source=ConsentSource.ADMIN,
                actor="bench",
                occurred_at=now,
                wording=WORDING,
            )
            for c in contacts
        ]
        async with container.uow.for_shop(shop.id) as uow:
            await uow.contacts.add_many(contacts, now)
            await uow.consent.append([e for e in events if e is not None])
            await uow.commit()
        ids += [c.id for c in contacts]
    return ids


async def fund(container: Container, shop: Shop, credits: int) -> None:
    async with container.uow.for_shop(shop.id) as uow:
        await TopUpWallet()(uow, credits=credits, reference="bench", source="bench")
        await uow.commit()


def requests(contacts: Sequence[uuid.UUID], count: int) -> list[OutgoingMessage]:
    """Message i goes to contact i mod N: a batch of B <= N messages has B recipients."""
    return [
        OutgoingMessage(
            text=TEMPLATES[i % len(TEMPLATES)].format(order=10_000 + i, code=f"{i:08X}"),
            category=MessageCategory.TRANSACTIONAL,
            source="bench",
            idempotency_key=f"bench:order:{10_000 + i}:{i % len(TEMPLATES)}",
            dedupe_key=f"order:{10_000 + i}:{i % len(TEMPLATES)}",
            contact_id=contacts[i % len(contacts)],
        )
        for i in range(count)
    ]


# --- 1. queueing ------------------------------------------------------------------------


@dataclass
class QueueRun:
    seconds: float
    batches: list[float]
    statuses: Counter[str]
    cpu: dict[str, float]

    def rate(self, messages: int) -> float:
        return messages / self.seconds


async def queue_all(
    container: Container, shop_id: uuid.UUID, batches: list[list[OutgoingMessage]], lanes: int
) -> QueueRun:
    """Every batch through `QueueMessages`, `lanes` batches at a time."""
    queue = container.queue_messages()
    pending = iter(batches)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def lane() -> None:
        for batch in pending:
            started = time.perf_counter()
            async with container.uow.for_shop(shop_id) as uow:
                shop = await uow.shops.get(shop_id)
                assert shop is not None
                results = await queue(uow, shop, batch)
                await uow.commit()
            latencies.append(time.perf_counter() - started)
            statuses.update(r.status.value for r in results)

    meter = CpuMeter({"bench": [os.getpid()]})
    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    seconds = time.perf_counter() - started
    return QueueRun(seconds, latencies, statuses, meter.shares())


async def warm_up(container: Container, shop: Shop, count: int) -> None:
    """Open the pool and fill the statement caches with a batch the run does not count:
    transactional texts to a contact who unsubscribed are recorded, blocked, never sent."""
    [gone] = await add_contacts(container, shop, range(count, count + 1), ConsentState.UNSUBSCRIBED)
    batch = [
        OutgoingMessage(
            text="warm-up",
            category=MessageCategory.TRANSACTIONAL,
            source="bench",
            idempotency_key=f"bench:warm:{n}",
            dedupe_key=f"warm:{n}",
            contact_id=gone,
        )
        for n in range(10)
    ]
    run = await queue_all(container, shop.id, [batch], 1)
    assert run.statuses == {MessageStatus.BLOCKED_CONSENT.value: len(batch)}, run.statuses


# --- 2./3. what the fake and the gateway take without a database ------------------------


@dataclass
class SendRun:
    label: str
    sends: int
    seconds: float
    failures: int
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.sends / self.seconds


def sms_body(n: int, prefix: str) -> dict[str, Any]:
    return {
        "from": "Blossom",
        "to": phone_number(n).removeprefix("+"),
        "text": TEMPLATES[0].format(order=n, code=f"{n:08X}"),
        "type": "GSM",
        "reference": f"{prefix}:{n}",
    }


async def fake_alone(fake: FakeProcess, sends: int) -> SendRun:
    pool = RawPool(fake.base_url + "/sms", GATEWAY_POOL)
    headers = {"Content-Type": "application/json", "X-Mitto-API-Key": MITTO_KEY}
    pending = iter(range(sends))
    failures = 0

    async def sender() -> None:
        nonlocal failures
        for n in pending:
            status, _ = await pool.post(json.dumps(sms_body(n, "raw")).encode(), headers)
            failures += status != 200

    meter = CpuMeter({"bench": [os.getpid()], "fake": [fake.process.pid]})
    started = time.perf_counter()
    try:
        await asyncio.gather(*(sender() for _ in range(GATEWAY_POOL)))
    finally:
        await pool.aclose()
    seconds = time.perf_counter() - started
    label = f"fake alone (raw client, {GATEWAY_POOL} conns)"
    return SendRun(label, sends, seconds, failures, meter.shares())


async def gateway_alone(fake: FakeProcess, sends: int) -> SendRun:
    gateway = MittoSmsGateway(MITTO_KEY, fake.base_url, callback_url="http://127.0.0.1:9/dlr")
    gate = asyncio.Semaphore(GATEWAY_IN_FLIGHT)
    failures = 0

    async def one(n: int) -> None:
        nonlocal failures
        body = sms_body(n, "gateway")
        sms = OutboundSms(body["reference"], f"+{body['to']}", body["text"], "Blossom", False)
        async with gate:
            try:
                await gateway.send(sms)
            except Exception:
                failures += 1

    meter = CpuMeter({"bench": [os.getpid()], "fake": [fake.process.pid]})
    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(n) for n in range(sends)))
    finally:
        await gateway.aclose()
    seconds = time.perf_counter() - started
    label = f"MittoSmsGateway ({GATEWAY_IN_FLIGHT} in flight)"
    return SendRun(label, sends, seconds, failures, meter.shares())


# --- 4. delivery ------------------------------------------------------------------------


@dataclass
class DeliveryRun:
    workers: int
    concurrency: int
    startup: float  # spawn -> first worker registered
    seconds: float  # first worker registered -> every message sent
    sent: int
    jobs: int
    cpu: dict[str, float]
    profiles: list[Path]

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def worker_command(concurrency: int, profile: Path | None) -> list[str]:
    command = [str(BLOSSOM), "worker", "--queues", "messages", "--concurrency", str(concurrency)]
    if profile is None:
        return command
    return [sys.executable, "-m", "cProfile", "-o", str(profile), *command]


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def workers(
    env: dict[str, str], count: int, concurrency: int, tmp: Path, profile: bool
) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[Path], list[Path]]]:
    worker_env = {**env, "LOG_LEVEL": "INFO"}  # one "delivery batch done" line per job
    tag = f"w{count}c{concurrency}"
    logs = [tmp / f"worker-{tag}-{n}.log" for n in range(count)]
    profiles = [tmp / f"worker-{tag}-{n}.prof" for n in range(count)] if profile else []
    processes = []
    try:
        for n, log in enumerate(logs):
            with log.open("wb") as out:
                command = worker_command(concurrency, profiles[n] if profile else None)
                processes.append(
                    subprocess.Popen(
                        command, cwd=REPO, env=worker_env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
        yield processes, logs, profiles
    finally:
        for process in processes:
            stop_worker(process)


async def deliver_all(
    owner: asyncpg.Connection,
    env: dict[str, str],
    fake: FakeProcess,
    expected: int,
    count: int,
    concurrency: int,
    tmp: Path,
    profile: bool,
) -> DeliveryRun:
    spawned = time.perf_counter()
    with workers(env, count, concurrency, tmp, profile) as (processes, logs, profiles):
        pids = [p.pid for p in processes]
        meter = CpuMeter({"workers": pids, "fake": [fake.process.pid], "bench": [os.getpid()]})
        ready = await wait_registered(owner, processes, logs)
        sent = await wait_sent(owner, processes, logs, expected, ready)
        seconds = time.perf_counter() - ready
        cpu = meter.shares()
    jobs = sum(log.read_text(errors="replace").count("delivery batch done") for log in logs)
    return DeliveryRun(count, concurrency, ready - spawned, seconds, sent, jobs, cpu, profiles)


async def wait_registered(
    owner: asyncpg.Connection, processes: Sequence[subprocess.Popen[bytes]], logs: list[Path]
) -> float:
    deadline = time.perf_counter() + READY_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        check_alive(processes, logs)
        if await owner.fetchval("SELECT count(*) FROM procrastinate_workers"):
            return time.perf_counter()
        await asyncio.sleep(0.02)
    raise RuntimeError(f"no worker registered within {READY_TIMEOUT_SECONDS:.0f}s")


async def wait_sent(
    owner: asyncpg.Connection,
    processes: Sequence[subprocess.Popen[bytes]],
    logs: list[Path],
    expected: int,
    ready: float,
) -> int:
    deadline = ready + DELIVERY_TIMEOUT_SECONDS
    report = ready + PROGRESS_SECONDS
    sent = 0
    while time.perf_counter() < deadline:
        check_alive(processes, logs)
        sent = await owner.fetchval("SELECT count(*) FROM messages WHERE status = 'sent'")
        now = time.perf_counter()
        if sent >= expected:
            return sent
        if now >= report:
            rate = sent / (now - ready)
            print(f"    {sent:>7,} sent after {now - ready:5.1f}s ({rate:,.0f}/s)", file=sys.stderr)
            report += PROGRESS_SECONDS
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"only {sent} of {expected} messages sent in {DELIVERY_TIMEOUT_SECONDS}s")


def check_alive(processes: Sequence[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    for process, log in zip(processes, logs, strict=True):
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"worker exited ({process.returncode}):\n{tail}")


async def reset_delivery(owner: asyncpg.Connection, shop: Shop) -> int:
    """Put every sent message back in the queue with fresh delivery jobs, for another
    delivery run on the same data: as the table owner, so no ledger entry is written."""
    ids = [
        r["id"] for r in await owner.fetch("SELECT id FROM messages WHERE status = 'sent' ORDER BY id")
    ]
    await owner.execute(
        "UPDATE messages SET status = 'queued', charge = 'reserved', provider_id = NULL, "
        "sent_at = NULL, attempts = 0 WHERE status = 'sent'"
    )
    jobs = [
        json.dumps({"shop_id": str(shop.id), "message_ids": [str(i) for i in ids[n : n + DELIVERY_BATCH]]})
        for n in range(0, len(ids), DELIVERY_BATCH)
    ]
    await owner.execute(
        "SELECT procrastinate_defer_jobs_v1(array_agg(ROW('messages', 'messages:deliver', 0,"
        " NULL, NULL, a::jsonb, NULL)::procrastinate_job_to_defer_v1)) FROM unnest($1::text[]) a",
        jobs,
    )
    return len(ids)


# --- checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checks:
    provider_accepted: int
    provider_references: int
    provider_duplicates: int
    missing: int
    unexpected: int
    statuses: dict[str, int]
    reserved: int
    jobs_left: int

    @property
    def ok(self) -> bool:
        return not (self.provider_duplicates or self.missing or self.unexpected) and not (
            self.reserved or self.jobs_left
        )


async def check(owner: asyncpg.Connection, fake: FakeProcess) -> Checks:
    counts = await fake.ask("counts")
    accepted = set(await fake.ask("references"))
    ours = {str(r["id"]) for r in await owner.fetch("SELECT id FROM messages WHERE status = 'sent'")}
    rows = await owner.fetch("SELECT status, count(*) AS n FROM messages GROUP BY status")
    reserved = await owner.fetchval("SELECT coalesce(sum(reserved), 0) FROM wallets")
    left = await owner.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'messages:deliver'"
    )
    return Checks(
        provider_accepted=counts["accepted"],
        provider_references=counts["references"],
        provider_duplicates=counts["duplicates"],
        missing=len(ours - accepted),
        unexpected=len(accepted - ours),
        statuses={r["status"]: r["n"] for r in rows},
        reserved=reserved,
        jobs_left=left,
    )


# --- profiles ---------------------------------------------------------------------------


def print_profile(title: str, stats: pstats.Stats, lines: int = 25) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(lines)
        body = out.getvalue()
        start = body.find("   ncalls")
        print(f"\n--- profile: {title}, by {order} ---\n{body[start:].rstrip()}")


# --- the run ----------------------------------------------------------------------------


async def describe(owner: asyncpg.Connection, embedded: bool, opts: Options) -> None:
    version = await owner.fetchval("SHOW server_version")
    where = "embedded (pgserver, Unix socket)" if embedded else "external (DATABASE_URL, TCP)"
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"CPUs:        {os.cpu_count()} (this process, Postgres, the fake and workers share them)")
    print(f"Load avg:    {load} before the run")
    print(f"Postgres:    {version}, {where}")
    print(f"Python:      {sys.version.split()[0]}")
    print(
        f"Shape:       {opts.contacts:,} contacts, {opts.messages:,} transactional messages in "
        f"batches of {opts.batch} ({opts.queue_concurrency} at a time), "
        f"{DELIVERY_BATCH} per delivery job",
        flush=True,
    )


async def run(opts: Options) -> None:
    server_url, embedded = server()
    async with fresh_database(server_url) as url:
        owner = await asyncpg.connect(libpq_url(url))
        try:
            await describe(owner, embedded is not None, opts)
            with tempfile.TemporaryDirectory() as tmp:
                await run_phases(url, owner, Path(tmp), opts)
        finally:
            await owner.close()
    del embedded  # keeps the embedded server up until the database is dropped


async def run_phases(url: str, owner: asyncpg.Connection, tmp: Path, opts: Options) -> None:
    with fake_mitto(tmp) as fake:
        env = bench_env(url, tmp, fake.base_url)
        container = build_container(load_settings(env), database_url=url)
        try:
            shop, queued = await seed_and_queue(container, owner, opts)
        finally:
            await container.aclose()
        await owner.execute("VACUUM ANALYZE")  # as a quiet night would; not timed

        print("\nWithout a database (sends/s):", flush=True)
        sends = [await fake_alone(fake, opts.baseline_sends)]
        sends.append(await gateway_alone(fake, opts.baseline_sends))
        for s in sends:
            print(
                f"  {s.label:<40} {s.rate:>8,.0f}   {s.failures} failed;  "
                f"cpu: {cpu_line(s.cpu, ('bench', 'fake'))}"
            )
        await fake.ask("reset")

        print("\nDelivery (blossom worker processes against the fake):", flush=True)
        shapes = [(opts.workers, opts.concurrency)]
        runs = []
        for n, (count, concurrency) in enumerate(shapes):
            if n:
                await fake.ask("reset")
                await reset_delivery(owner, shop)
            delivery = await deliver_all(
                owner, env, fake, queued, count, concurrency, tmp, opts.profile
            )
            runs.append(delivery)
            print_delivery(delivery)
            checks = await check(owner, fake)
            print_checks(checks, queued)
            for path in delivery.profiles:
                if path.exists():
                    print_profile(f"worker {path.stem}", pstats.Stats(str(path)))
        print_targets(opts, queued, runs)


async def seed_and_queue(
    container: Container, owner: asyncpg.Connection, opts: Options
) -> tuple[Shop, int]:
    started = time.perf_counter()
    shop = await add_shop(container)
    credits = estimate(TEMPLATES[0].format(order=10_000, code="0"), "US", container.price_list)
    await fund(container, shop, 2 * opts.messages * credits.credits)
    contacts = await add_contacts(container, shop, range(opts.contacts))
    print(f"Seeded:      {len(contacts):,} contacts in {time.perf_counter() - started:.1f}s")
    await warm_up(container, shop, opts.contacts)

    pending = requests(contacts, opts.messages)
    batches = [pending[n : n + opts.batch] for n in range(0, len(pending), opts.batch)]
    profiler = cProfile.Profile() if opts.profile else None
    if profiler:
        profiler.enable()
    queued_run = await queue_all(container, shop.id, batches, opts.queue_concurrency)
    if profiler:
        profiler.disable()
    queued = queued_run.statuses.get(MessageStatus.QUEUED.value, 0)
    jobs = await owner.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'messages:deliver'"
    )
    print("\nQueueing (QueueMessages, one unit of work per batch):")
    print(
        f"  {opts.messages:,} messages in {queued_run.seconds:.2f}s = "
        f"{queued_run.rate(opts.messages):,.0f} messages/s; per batch p50 "
        f"{1000 * percentile(queued_run.batches, 0.5):.0f} ms, p99 "
        f"{1000 * percentile(queued_run.batches, 0.99):.0f} ms; "
        f"cpu: {cpu_line(queued_run.cpu, ('bench', 'postgres'))}"
    )
    print(f"  statuses: {dict(queued_run.statuses)}; delivery jobs deferred: {jobs}", flush=True)
    if profiler:
        print_profile("queueing (this process)", pstats.Stats(profiler))
    return shop, queued


def print_delivery(d: DeliveryRun) -> None:
    print(
        f"  workers {d.workers} x concurrency {d.concurrency}: {d.sent:,} sent in "
        f"{d.seconds:.2f}s = {d.rate:,.0f} messages/s (+{d.startup:.1f}s process start-up); "
        f"{d.jobs} delivery jobs ran"
    )
    print(f"  cpu: {cpu_line(d.cpu, ('workers', 'fake', 'postgres', 'bench'))}", flush=True)


def print_checks(c: Checks, queued: int) -> None:
    print(
        f"  provider: {c.provider_accepted:,} accepted, {c.provider_references:,} distinct "
        f"references, {c.provider_duplicates} duplicates; of our {queued:,} messages "
        f"{c.missing} never accepted, {c.unexpected} accepted but not ours"
    )
    print(
        f"  ours: statuses {c.statuses}; credits still reserved {c.reserved}; "
        f"delivery jobs left {c.jobs_left}"
    )
    print(f"  every message accepted exactly once and settled: {'PASS' if c.ok else 'FAIL'}")


def print_targets(opts: Options, queued: int, runs: Sequence[DeliveryRun]) -> None:
    del opts, queued, runs


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000, help="contacts (10000)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages (100000)")
    parser.add_argument("--batch", type=int, default=500, help="messages per QueueMessages (500)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs per worker process (4)")
    parser.add_argument(
        "--queue-concurrency", type=int, default=1, help="batches queued at once (1)"
    )
    parser.add_argument(
        "--baseline-sends", type=int, default=10_000, help="sends per no-database run (10000)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile queueing and workers")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    opts = Options(
        contacts=args.contacts,
        messages=args.messages,
        batch=args.batch,
        workers=args.workers,
        concurrency=args.concurrency,
        queue_concurrency=args.queue_concurrency,
        baseline_sends=args.baseline_sends,
        profile=args.profile,
    )
    return opts, args.serve_fake


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop for the fake, when installed: it stands in for Mitto, so the leaner the better."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> None:
    opts, fake = parse_args()
    if fake:
        with asyncio.Runner(loop_factory=event_loop) as runner:
            runner.run(serve_fake())
        return
    started = time.perf_counter()
    asyncio.run(run(opts))
    print(f"\nTotal wall time: {time.perf_counter() - started:.1f}s")
    print(f"Load avg after: {', '.join(f'{n:.2f}' for n in os.getloadavg())}")


if __name__ == "__main__":
    main()
