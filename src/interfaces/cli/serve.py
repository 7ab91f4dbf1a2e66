"""`blossom up|api|worker`: the long-running processes."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Awaitable, Callable

import click
import uvicorn

from application.tasks import QUEUES
from infrastructure.db import migrate
from infrastructure.queue.app import run_supervised_worker
from interfaces.bootstrap import Container, build_container, resolve_database_url, running
from interfaces.cli.main import run, settings_or_exit, stop_event_on_signals
from interfaces.http.app import create_app

log = logging.getLogger("blossom")


async def _serve_api(
    container: Container, stop: asyncio.Event, *, reuse_port: bool = False
) -> None:
    settings = container.settings
    config = uvicorn.Config(
        create_app(container),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    # Everything built so far lives as long as the process: out of the collector's sight,
    # full collections stop walking it (they paused requests for ~100 ms under load).
    gc.collect()
    gc.freeze()
    sockets = [_shared_socket(settings.host, settings.port)] if reuse_port else None
    serving = asyncio.create_task(server.serve(sockets=sockets))
    await stop.wait()
    server.should_exit = True
    await serving


@click.command()
def up() -> None:
    """Development: embedded Postgres if needed, migrate, then API and worker in one process."""
    settings = settings_or_exit()
    url, embedded = resolve_database_url(settings)
    migrate.upgrade(url)

    async def main() -> None:
        container = build_container(settings, database_url=url, embedded=embedded)
        stop = stop_event_on_signals()
        try:
            base = f"http://{settings.host}:{settings.port}"
            click.echo(
                f"SMS Blossom is up ({'embedded' if embedded else 'external'} Postgres, "
                f"{settings.sms_provider} SMS)\n"
                f"  API      {base}/api/v1\n  OpenAPI  {base}/schema\n"
                f"  Health   {base}/readyz\n  Metrics  {base}/metrics"
            )
            await serve_everything(container, stop)
        finally:
            await container.aclose()

    run(main)


async def serve_everything(container: Container, stop: asyncio.Event) -> None:
    """API and worker in this process until `stop`; the worker owns the queue's pool."""
    await run_together(
        stop,
        _serve_api(container, stop),
        run_supervised_worker(
            container.queue, queues=None, stop=stop, **container.worker_options()
        ),
    )


async def run_together(stop: asyncio.Event, *parts: Awaitable[None]) -> None:
    """Run `parts` until `stop`. One that fails sets `stop`, so the others wind down
    gracefully, and its failure ends the process: an API whose worker died would look
    healthy while nothing is sent."""

    async def part(awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        finally:
            stop.set()

    outcomes = await asyncio.gather(*(part(a) for a in parts), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket several API processes bind at once; the kernel spreads the
    connections between them (SO_REUSEPORT, Linux and BSD)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


@click.command()
@click.option(
    "--processes", "-p", default=1, show_default=True, help="API processes (one per core)."
)
def api(processes: int) -> None:
    """Serve the HTTP API (admin REST, webhooks, app proxy, ops endpoints)."""
    if processes > 1:
        _run_processes(processes, _api_process, True)
        return
    _api_process(False)


def _api_process(reuse_port: bool) -> None:
    settings = settings_or_exit()

    async def main() -> None:
        # Pre-ping costs a round trip per request; without it a connection broken by a
        # database restart fails one request, and the pool is renewed.
        container = build_container(settings, application_name="blossom-api", pre_ping=False)
        async with running(container):
            await _serve_api(container, stop_event_on_signals(), reuse_port=reuse_port)

    run(main)


@click.command()
@click.option(
    "--queues", "-q", help=f"Comma-separated queues (default: all of {', '.join(QUEUES)})."
)
@click.option(
    "--processes", "-p", default=1, show_default=True, help="Worker processes (one per core)."
)
@click.option(
    "--concurrency", "-c", default=1, show_default=True, help="Concurrent jobs per process."
)
def worker(queues: str | None, processes: int, concurrency: int) -> None:
    """Run the job worker; it reconnects by itself after a database restart."""
    chosen = [q.strip() for q in queues.split(",")] if queues else None
    unknown = set(chosen or ()) - set(QUEUES)
    if unknown:
        raise click.BadParameter(
            f"unknown queue(s): {', '.join(sorted(unknown))}", param_hint="--queues"
        )
    if processes > 1:
        _run_processes(processes, _worker_process, chosen, concurrency)
        return
    _worker_process(chosen, concurrency)


def _run_processes(count: int, target: Callable[..., None], *args: object) -> None:
    """`count` children running `target`; a stop signal to the parent stops each gracefully."""
    children = [multiprocessing.Process(target=target, args=args) for _ in range(count)]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()


def _worker_process(queues: list[str] | None, concurrency: int) -> None:
    settings = settings_or_exit()

    async def main() -> None:
        container = build_container(settings, application_name="blossom-worker")
        stop = stop_event_on_signals()
        try:
            await run_supervised_worker(
                container.queue,
                queues=queues,
                stop=stop,
                concurrency=concurrency,
                **container.worker_options(queues),
            )
        finally:
            await container.aclose()

    run(main)
