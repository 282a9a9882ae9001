"""Where a running service listens."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from h3spark.services._paths import postgres_password_file

POSTGRES_USER = "h3spark"  # the local PostgreSQL's superuser; its password is in postgres_password_file()


@dataclass(frozen=True)
class Endpoint:
    """The addresses of one running service.

    ``uri`` is what clients use: ``127.0.0.1:9092`` (Kafka bootstrap), ``hdfs://127.0.0.1:8020``,
    ``spark://127.0.0.1:7077``; ``http_url`` is WebHDFS for hdfs and the web UI for spark.
    """

    service: str
    uri: str
    http_url: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.uri

    @property
    def webhdfs_url(self) -> str | None:
        return self.http_url if self.service == "hdfs" else None

    @property
    def master_url(self) -> str:
        return self.uri

    def line(self) -> str:
        """The one line ``services up`` and ``services status`` print."""
        if self.service == "hdfs":
            return f"hdfs {self.uri} (webhdfs {self.http_url})"
        if self.service == "postgres":
            return f"postgres {self.uri} (user {POSTGRES_USER}, password_file {postgres_password_file()})"
        return f"{self.service} {self.uri}"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: Path) -> Endpoint | None:
        try:
            data = json.loads(path.read_text())
            return cls(service=data["service"], uri=data["uri"], http_url=data.get("http_url"))
        except (OSError, ValueError, KeyError, TypeError):
            return None
