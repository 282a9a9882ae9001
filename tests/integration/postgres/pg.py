"""psql against a PostgreSQL server h3spark started: to set tables up and look at them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require


@dataclass(frozen=True)
class Postgres:
    """The running server: its JDBC URL, port, password file, and psql."""

    url: str
    port: int
    password_file: Path

    def psql(self, sql: str, password: str | None = None) -> subprocess.CompletedProcess:
        """Run ``sql`` with psql as user h3spark (unaligned, tuples only); the result, checked by the caller."""
        secret = self.password_file.read_text().strip() if password is None else password
        env = {**os.environ, "PGPASSWORD": secret, "PGCONNECT_TIMEOUT": "10"}
        return subprocess.run([psql_binary(), "-h", "127.0.0.1", "-p", str(self.port), "-U", "h3spark", "-d", "postgres",
                               "-v", "ON_ERROR_STOP=1", "-Atc", sql], env=env, capture_output=True, text=True, timeout=60)

    def query(self, sql: str) -> list[str]:
        result = self.psql(sql)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    def tables_like(self, pattern: str) -> list[str]:
        return self.query(f"SELECT table_name FROM information_schema.tables WHERE table_name LIKE '{pattern}' "
                          "ORDER BY 1")

    def config(self, **settings) -> dict:
        return {"url": self.url, "user": "h3spark", "password_file": str(self.password_file), **settings}


def psql_binary() -> str:
    from h3spark.services._postgres import find_server_bin

    server_bin = find_server_bin()
    found = shutil.which("psql") or (str(server_bin / "psql") if server_bin else None)
    require(found is not None, "psql is needed to check PostgreSQL; install postgresql-client")
    return found
