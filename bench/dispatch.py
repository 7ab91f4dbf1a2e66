"""Message dispatch: queue 100,000 texts through `QueueMessages`, deliver them to a fake Mitto.

Run from the repository root (about four minutes on 2 cores):

    .venv/bin/python bench/dispatch.py [--contacts N] [--messages M] [--batch B]
                                       [--workers W[,W...]] [--concurrency C] [--profile]

It uses `DATABASE_URL`'s server when set, else the embedded Postgres in `.data/bench`
(through `queue_throughput.py`'s helpers), creates a throw-away database, migrates it, and
drops it at the end. One shop, N subscribed US contacts (10,000) and a wallet funded for
every message. Then, per worker count in `--workers` (default 1,2), one round: M messages
(100,000) queued, each contact getting M/N of them, then delivered by that many workers.

The messages are transactional order updates ("Your order #10042 has shipped ..."), one GSM
segment each, with an idempotency key and a dedupe key per order, as an order automation
would send them. The shop lets transactional texts skip quiet hours (its
`transactional_bypass_quiet_hours` setting) and the marketing cap does not count them, so
neither the clock nor the recipients' time zones hold any back: every message is queued to
be sent now, and each has its own number and reference.

Measures:

1. queueing   `QueueMessages` for M messages in batches of B (500), one unit of work and
              commit per batch (shop read, the shop's queueing lock, idempotency and dedupe
              look-ups,
              recipients with their phones decrypted, wallet reservation, encrypted insert,
              delivery jobs deferred), in this process; messages/s and per-batch p50/p99.
              The first round queues its first 1,000 messages untimed and then ANALYZEs the
              application's tables, as autovacuum keeps a live database (`--no-analyze` to
              see a database never analysed). `--queue-concurrency 2` queues two batches at
              once: they are one shop's, so they serialise on its wallet row from the
              reservation to the commit.
2. fake alone a minimal keep-alive HTTP/1.1 client (`webhook_ingress.RawPool`, 20
              connections) posting valid sends to the fake: what the fake can take here.
3. gateway    `MittoSmsGateway.send` (the worker's adapter: httpx, 20 connections, 32 sends
              in flight like `DeliveryLimits.concurrency`) to the fake, no database: what one
              worker process's HTTP path can do at most.
4. delivery   W real `blossom worker --queues messages --concurrency C` processes (C = 4)
              against the fake, from the moment a worker registers until every message of
              the round is `sent` (polled twice a second as the table owner); messages/s.

The fake Mitto (`FakeMitto`, uvicorn on uvloop) runs in a process of its own, started by
this script with `--serve-fake`, and answers `counts`, `references` and `reset` on its stdin.
After each delivery the bench checks on the provider's side that it accepted every
message's reference exactly once (none missing, none twice, none foreign), and on ours that
the round's messages are all `sent`, the wallet holds nothing reserved and no delivery job
is left. Rate limits are off (`SMS_RATE_PER_SECOND=0`, `SMS_SHOP_RATE_PER_SECOND=0`). The
workers log at INFO, so their "delivery batch done" lines count the delivery jobs that ran
(procrastinate deletes the messages queue's jobs when they succeed).

`--profile` runs the timed queueing under cProfile in this process, and the workers under
`python -m cProfile`, and prints each one's top functions; figures are then slower (the
profiler costs CPU) and only the profiles are worth reading.

Caveats: everything shares the machine's cores: this process (queueing, then polling),
Postgres, the fake and the workers. Each measure prints the CPU that each side used, in
percent of one core; the load average before the run shows whether something else was
busy. Expect run-to-run noise of 10-20%.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # without an install
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' seeding helpers

import asyncpg
import uvloop
from queue_throughput import fresh_database, server
from tests.support.messaging import add_contacts, fund, phone_number
from webhook_ingress import CpuMeter, RawPool, percentile

from application.messaging.queue_messages import DELIVERY_BATCH, OutgoingMessage
from application.ports import OutboundSms
from domain.billing import estimate
from domain.consent import ConsentState
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
SEED_CHUNK = 1000
WARM_MESSAGES = 1000  # the first round queues these before its clock starts
# What autovacuum keeps analysed on a live database (this one starts empty, and a test
# server may run with autovacuum off). Not the job tables: see README.md.
APP_TABLES = "messages, message_events, wallets, wallet_transactions, contacts, consent_events"
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
    workers: list[int]
    concurrency: int
    queue_concurrency: int
    baseline_sends: int
    analyze: bool
    profile: bool


# --- CPU per side -----------------------------------------------------------------------


def cpu_line(shares: dict[str, float], order: Sequence[str]) -> str:
    return ", ".join(f"{side} {shares.get(side, 0.0):.0f}%" for side in order)


# --- the fake Mitto, in a process of its own -------------------------------------------


async def serve_fake() -> None:
    """`--serve-fake`: print the fake's base URL, then answer each command read on stdin
    with one JSON line; stop at the end of the input."""
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
            raise RuntimeError(f"the fake Mitto exited ({self.process.wait()})")
        return line

    async def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        self.process.stdin.flush()
        return json.loads(await asyncio.to_thread(self._line))

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # end of input: the fake stops
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
    """Shared by this process and the workers: the same keys, so workers decrypt our texts."""
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
        settings={"messaging": {"transactional_bypass_quiet_hours": True}},
    )
    async with container.uow.maintenance() as uow:
        created = await uow.shops.add(shop)
        await uow.commit()
    return created


async def seed_contacts(
    container: Container,
    shop: Shop,
    numbers: range,
    state: ConsentState = ConsentState.SUBSCRIBED,
) -> list[uuid.UUID]:
    """Contacts with their consent in the ledger (the tests' helper), SEED_CHUNK at a time."""
    ids: list[uuid.UUID] = []
    for start in range(numbers.start, numbers.stop, SEED_CHUNK):
        phones = [phone_number(n) for n in range(start, min(numbers.stop, start + SEED_CHUNK))]
        ids += [c.id for c in await add_contacts(container, shop, phones, state=state)]
    return ids


def requests(contacts: Sequence[uuid.UUID], count: int, source: str) -> list[OutgoingMessage]:
    """Message i goes to contact i mod N, so a batch of B <= N messages has B recipients."""
    return [
        OutgoingMessage(
            text=TEMPLATES[i % len(TEMPLATES)].format(order=10_000 + i, code=f"{i:08X}"),
            category=MessageCategory.TRANSACTIONAL,
            source=source,
            idempotency_key=f"{source}:order:{10_000 + i}:{i % len(TEMPLATES)}",
            dedupe_key=f"{source}:order:{10_000 + i}:{i % len(TEMPLATES)}",
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


async def warm_up(container: Container, shop: Shop, number: int) -> None:
    """Open the pool and fill the statement caches with a batch no measure counts:
    transactional texts to a contact who unsubscribed are recorded, blocked, never sent."""
    [gone] = await seed_contacts(
        container, shop, range(number, number + 1), ConsentState.UNSUBSCRIBED
    )
    batch = [
        OutgoingMessage(
            text="warm-up",
            category=MessageCategory.TRANSACTIONAL,
            source="warm-up",
            idempotency_key=f"warm-up:{n}",
            dedupe_key=f"warm-up:{n}",
            contact_id=gone,
        )
        for n in range(10)
    ]
    run = await queue_all(container, shop.id, [batch], 1)
    assert run.statuses == {MessageStatus.BLOCKED_CONSENT.value: len(batch)}, run.statuses


@dataclass(frozen=True)
class Round:
    source: str  # the messages' `source`: what tells this round's messages apart
    queued: int  # messages waiting for delivery, untimed ones included
    timed: int  # messages in the timed part
    run: QueueRun

    @property
    def rate(self) -> float:
        return self.timed / self.run.seconds


async def queue_round(
    container: Container,
    owner: asyncpg.Connection,
    shop: Shop,
    contacts: Sequence[uuid.UUID],
    source: str,
    first: bool,
    opts: Options,
) -> Round:
    pending = requests(contacts, opts.messages, source)
    batches = [pending[n : n + opts.batch] for n in range(0, len(pending), opts.batch)]
    warm = min(len(batches) - 1, max(1, WARM_MESSAGES // opts.batch)) if first else 0
    untimed = await queue_all(container, shop.id, batches[:warm], 1)
    if first and opts.analyze:
        await owner.execute(f"ANALYZE {APP_TABLES}")
    profiler = cProfile.Profile() if opts.profile else None
    if profiler:
        profiler.enable()
    timed = await queue_all(container, shop.id, batches[warm:], opts.queue_concurrency)
    if profiler:
        profiler.disable()
    statuses = untimed.statuses + timed.statuses
    result = Round(
        source=source,
        queued=statuses.get(MessageStatus.QUEUED.value, 0),
        timed=sum(len(b) for b in batches[warm:]),
        run=timed,
    )
    jobs = await owner.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'messages:deliver'"
    )
    print_queueing(result, warm, opts)
    print(f"  statuses: {dict(statuses)}; delivery jobs waiting: {jobs}", flush=True)
    if profiler:
        print_profile(f"queueing {source} (this process)", pstats.Stats(profiler))
    return result


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
    label = f"fake alone (raw client, {GATEWAY_POOL} connections)"
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


async def baselines(fake: FakeProcess, sends: int) -> None:
    print(f"\nWithout a database ({sends:,} sends each):", flush=True)
    for run in (await fake_alone(fake, sends), await gateway_alone(fake, sends)):
        print(
            f"  {run.label:<42} {run.rate:>7,.0f} sends/s, {run.failures} failed; "
            f"cpu: {cpu_line(run.cpu, ('bench', 'fake'))}"
        )
    await fake.ask("reset")


# --- 4. delivery ------------------------------------------------------------------------


@dataclass
class DeliveryRun:
    workers: int
    concurrency: int
    startup: float  # spawn -> first worker registered
    seconds: float  # first worker registered -> every message of the round sent
    sent: int
    jobs: int
    cpu: dict[str, float]
    profiles: list[Path]

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    @property
    def shape(self) -> str:
        return f"{self.workers} worker{'s' * (self.workers > 1)} x {self.concurrency}"


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
    env: dict[str, str], count: int, concurrency: int, tag: str, tmp: Path, profile: bool
) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[Path], list[Path]]]:
    worker_env = {**env, "LOG_LEVEL": "INFO"}  # one "delivery batch done" line per job
    logs = [tmp / f"worker-{tag}-{n}.log" for n in range(count)]
    profiles = [tmp / f"worker-{tag}-{n}.prof" for n in range(count)] if profile else []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for n, log in enumerate(logs):
            command = worker_command(concurrency, profiles[n] if profile else None)
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        command, cwd=REPO, env=worker_env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
        yield processes, logs, profiles
    finally:
        for process in processes:
            stop_worker(process)


async def deliver_round(
    owner: asyncpg.Connection,
    env: dict[str, str],
    fake: FakeProcess,
    round_: Round,
    count: int,
    tmp: Path,
    opts: Options,
) -> DeliveryRun:
    spawned = time.perf_counter()
    with workers(env, count, opts.concurrency, round_.source, tmp, opts.profile) as started:
        processes, logs, profiles = started
        pids = [p.pid for p in processes]
        meter = CpuMeter({"workers": pids, "fake": [fake.process.pid], "bench": [os.getpid()]})
        ready = await wait_registered(owner, processes, logs)
        sent = await wait_sent(owner, processes, logs, round_, ready)
        seconds = time.perf_counter() - ready
        cpu = meter.shares()
    jobs = sum(log.read_text(errors="replace").count("delivery batch done") for log in logs)
    return DeliveryRun(count, opts.concurrency, ready - spawned, seconds, sent, jobs, cpu, profiles)


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
    round_: Round,
    ready: float,
) -> int:
    deadline = ready + DELIVERY_TIMEOUT_SECONDS
    report = ready + PROGRESS_SECONDS
    sent = 0
    while time.perf_counter() < deadline:
        check_alive(processes, logs)
        sent = await owner.fetchval(
            "SELECT count(*) FROM messages WHERE source = $1 AND status = 'sent'", round_.source
        )
        now = time.perf_counter()
        if sent >= round_.queued:
            return sent
        if now >= report:
            rate = sent / (now - ready)
            print(f"    {sent:>7,} sent after {now - ready:5.1f}s ({rate:,.0f}/s)", file=sys.stderr)
            report += PROGRESS_SECONDS
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"{sent} of {round_.queued} sent in {DELIVERY_TIMEOUT_SECONDS:.0f}s")


def check_alive(processes: Sequence[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    for process, log in zip(processes, logs, strict=True):
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"worker exited ({process.returncode}):\n{tail}")


# --- checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checks:
    accepted: int  # sends the fake accepted during the round
    references: int  # distinct references among them
    duplicates: int  # accepted sends beyond the first per reference
    missing: int  # our sent messages the fake never accepted
    foreign: int  # references the fake accepted that are not our sent messages
    statuses: dict[str, int]
    reserved: int
    jobs_left: int

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missing or self.foreign) and not (
            self.reserved or self.jobs_left
        )


async def check(owner: asyncpg.Connection, fake: FakeProcess, round_: Round) -> Checks:
    counts = await fake.ask("counts")
    accepted = set(await fake.ask("references"))
    rows = await owner.fetch("SELECT id, status FROM messages WHERE source = $1", round_.source)
    sent = {str(r["id"]) for r in rows if r["status"] == MessageStatus.SENT.value}
    reserved = await owner.fetchval("SELECT coalesce(sum(reserved), 0) FROM wallets")
    left = await owner.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'messages:deliver'"
    )
    return Checks(
        accepted=counts["accepted"],
        references=counts["references"],
        duplicates=counts["duplicates"],
        missing=len(sent - accepted),
        foreign=len(accepted - sent),
        statuses=dict(Counter(r["status"] for r in rows)),
        reserved=reserved,
        jobs_left=left,
    )


# --- output -----------------------------------------------------------------------------


def print_queueing(round_: Round, warm: int, opts: Options) -> None:
    run = round_.run
    before = ""
    if warm:
        stats = "then ANALYZE" if opts.analyze else "no ANALYZE"
        before = f"; the first {warm * opts.batch:,} untimed, {stats}"
    print(
        f"\nQueueing {round_.source} ({opts.batch} per unit of work, "
        f"{opts.queue_concurrency} at a time{before}):"
    )
    print(
        f"  {round_.timed:,} messages in {run.seconds:.2f}s = {round_.rate:,.0f} messages/s; "
        f"per batch p50 {1000 * percentile(run.batches, 0.5):.0f} ms, "
        f"p99 {1000 * percentile(run.batches, 0.99):.0f} ms; "
        f"cpu: {cpu_line(run.cpu, ('bench', 'postgres'))}"
    )


def print_delivery(d: DeliveryRun) -> None:
    print(
        f"  {d.shape}: {d.sent:,} sent in {d.seconds:.2f}s = {d.rate:,.0f} messages/s "
        f"(+{d.startup:.1f}s process start-up); {d.jobs} delivery jobs ran"
    )
    print(f"  cpu: {cpu_line(d.cpu, ('workers', 'fake', 'postgres', 'bench'))}", flush=True)


def print_checks(c: Checks, queued: int) -> None:
    print(
        f"  provider: {c.accepted:,} accepted, {c.references:,} distinct references, "
        f"{c.duplicates} duplicates; of our {queued:,} messages {c.missing} never accepted, "
        f"{c.foreign} accepted that are not ours"
    )
    print(
        f"  ours: {c.statuses}; credits still reserved {c.reserved}; "
        f"delivery jobs left {c.jobs_left}"
    )
    print(f"  every message accepted exactly once and settled: {'PASS' if c.ok else 'FAIL'}")


def print_profile(title: str, stats: pstats.Stats, lines: int = 25) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(lines)
        body = out.getvalue()
        print(f"\n--- profile: {title}, by {order} ---\n{body[body.find('   ncalls') :].rstrip()}")


def print_targets(rounds: Sequence[tuple[Round, DeliveryRun, Checks]]) -> None:
    print("\nTargets (issue)                                    messages/s   met")
    for round_, delivery, _ in rounds:
        for label, rate, target in (
            (f"queueing >= {TARGET_QUEUE:,.0f}/s ({round_.source})", round_.rate, TARGET_QUEUE),
            (
                f"delivery >= {TARGET_DELIVERY:,.0f}/s ({delivery.shape})",
                delivery.rate,
                TARGET_DELIVERY,
            ),
        ):
            print(f"  {label:<48} {rate:>9,.0f}   {'yes' if rate >= target else 'NO'}")
    exact = "PASS" if all(checks.ok for _, _, checks in rounds) else "FAIL"
    print(f"  {'every message accepted exactly once, settled':<48} {exact:>9}")


# --- the run ----------------------------------------------------------------------------


async def describe(owner: asyncpg.Connection, embedded: bool, opts: Options) -> None:
    version = await owner.fetchval("SHOW server_version")
    where = "embedded (pgserver, Unix socket)" if embedded else "external (DATABASE_URL, TCP)"
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"CPUs:        {os.cpu_count()} (this process, Postgres, the fake, workers share them)")
    print(f"Load avg:    {load} before the run")
    print(f"Postgres:    {version}, {where}")
    print(f"Python:      {sys.version.split()[0]}")
    print(
        f"Shape:       {opts.contacts:,} contacts; per round {opts.messages:,} transactional "
        f"messages, {DELIVERY_BATCH} per delivery job; rounds with "
        f"{', '.join(map(str, opts.workers))} worker process(es) x {opts.concurrency} jobs",
        flush=True,
    )


async def run(opts: Options) -> None:
    server_url, embedded = server()
    async with fresh_database(server_url) as url:
        owner = await asyncpg.connect(libpq_url(url))
        try:
            await describe(owner, embedded is not None, opts)
            with tempfile.TemporaryDirectory() as tmp, fake_mitto(Path(tmp)) as fake:
                await run_rounds(url, owner, fake, Path(tmp), opts)
        finally:
            await owner.close()
    del embedded  # keeps the embedded server up until the database is dropped


async def run_rounds(
    url: str, owner: asyncpg.Connection, fake: FakeProcess, tmp: Path, opts: Options
) -> None:
    env = bench_env(url, tmp, fake.base_url)
    container = build_container(load_settings(env), database_url=url)
    try:
        started = time.perf_counter()
        shop = await add_shop(container)
        price = estimate(TEMPLATES[0].format(order=10_000, code="0"), "US", container.price_list)
        await fund(container, shop, 2 * len(opts.workers) * opts.messages * price.credits)
        contacts = await seed_contacts(container, shop, range(opts.contacts))
        print(f"Seeded:      {len(contacts):,} contacts in {time.perf_counter() - started:.1f}s")
        await warm_up(container, shop, opts.contacts)
        if opts.baseline_sends:
            await baselines(fake, opts.baseline_sends)
        results = []
        for n, count in enumerate(opts.workers):
            source = f"round-{n + 1}"
            round_ = await queue_round(container, owner, shop, contacts, source, n == 0, opts)
            await owner.execute("VACUUM ANALYZE")  # untimed: the job table is full now
            await fake.ask("reset")
            print(f"\nDelivery {source} (blossom worker against the fake):", flush=True)
            delivery = await deliver_round(owner, env, fake, round_, count, tmp, opts)
            print_delivery(delivery)
            checks = await check(owner, fake, round_)
            print_checks(checks, round_.queued)
            for path in delivery.profiles:
                if path.exists():
                    print_profile(f"worker {path.stem}", pstats.Stats(str(path)))
            results.append((round_, delivery, checks))
        print_targets(results)
    finally:
        await container.aclose()


def worker_counts(value: str) -> list[int]:
    return [int(n) for n in value.split(",")]


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000, help="contacts (10000)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages a round (100000)")
    parser.add_argument("--batch", type=int, default=500, help="messages per QueueMessages (500)")
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default=[1, 2],
        help="worker processes, one round per count (1,2)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="jobs per worker process (4)")
    parser.add_argument(
        "--queue-concurrency", type=int, default=1, help="batches queued at once (1)"
    )
    parser.add_argument(
        "--baseline-sends", type=int, default=10_000, help="sends per baseline, 0: none (10000)"
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="queue without table statistics (a database autovacuum never analysed)",
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
        analyze=not args.no_analyze,
        profile=args.profile,
    )
    return opts, args.serve_fake


def main() -> None:
    opts, fake = parse_args()
    if fake:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_fake())
        return
    started = time.perf_counter()
    asyncio.run(run(opts))
    print(f"\nTotal wall time: {time.perf_counter() - started:.1f}s")
    print(f"Load avg after: {', '.join(f'{n:.2f}' for n in os.getloadavg())}")


if __name__ == "__main__":
    main()
