"""An embedded Postgres for development and tests when `DATABASE_URL` is unset.

`pgserver` ships Postgres 16 binaries as a Python package; the cluster lives in the
data folder and listens on a Unix socket only.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, database: str = "blossom") -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
            from pgserver import _commands as commands

        self._commands = commands
        self.pgdata = data_dir / "postgres"
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        self.database = database
        self._server.psql(
            f"SELECT 'CREATE DATABASE {database}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\\gexec"
        )
        log.info("embedded postgres ready", extra={"pgdata": str(self.pgdata)})

    @property
    def url(self) -> str:
        return self._server.get_uri(self.database)

    def admin_url(self) -> str:
        return self._server.get_uri("postgres")

    def stop(self) -> None:
        """Stop the server now (the handle stays usable: `start` brings it back)."""
        self._commands.pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user
        )

    def close(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        self._server.cleanup()

    def start(self) -> None:
        with self._server._lock:
            self._server.ensure_postgres_running()
