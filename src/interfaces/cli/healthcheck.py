"""The container's health check: `python -m interfaces.cli.healthcheck`.

The image runs every process: the API answers `/healthz`, the worker serves no HTTP. The
check reads the command of the container's main process (PID 1, `blossom COMMAND`) and
probes `/healthz` only for the commands that serve HTTP; a worker container is healthy
while its process runs. Standard library only: it runs every 30 seconds.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

SERVES_HTTP = frozenset({"api", "up", "demo"})


def command_of(cmdline: Sequence[str]) -> str | None:
    """`blossom`'s subcommand in a process's argv (`python /…/bin/blossom worker -c 4`)."""
    for index, arg in enumerate(cmdline):
        if Path(arg).name == "blossom":
            rest = [a for a in cmdline[index + 1 :] if not a.startswith("-")]
            return rest[0] if rest else None
    return None


def check(cmdline: Sequence[str], environ: Mapping[str, str], timeout: float = 4.0) -> int:
    if command_of(cmdline) not in SERVES_HTTP:
        return 0
    url = f"http://127.0.0.1:{environ.get('PORT') or '8000'}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


def main() -> None:
    cmdline = Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    sys.exit(check([a for a in cmdline if a], os.environ))


if __name__ == "__main__":
    main()
