"""Run the service's own commands as child processes, and wait on conditions (not time)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def child_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(values)
    # This checkout's own sources first: the installed `blossom` script's .pth file names
    # whichever checkout the virtualenv was built from, which may not be this one.
    env["PYTHONPATH"] = os.pathsep.join((str(REPO / "src"), str(REPO)))
    return env


def spawn(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, cwd=REPO, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def blossom(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "blossom"), *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 60.0, interval: float = 0.2
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def stop(process: subprocess.Popen[bytes], *, timeout: float = 20) -> str:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.stdout.read().decode(errors="replace") if process.stdout else ""
