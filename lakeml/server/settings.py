"""What a server process is configured with (CLI flags and ``LAKEML_SERVER_*`` variables)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass
class ServerSettings:
    """Server options. Sizes in bytes, times in seconds."""

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    insecure: bool = False  # allow a non-loopback bind without tokens
    auth_required: bool | None = None  # None: required when tokens exist or the bind is not loopback
    max_body_bytes: int = field(default_factory=lambda: _env_int("LAKEML_SERVER_MAX_BODY", 64 * 1024 * 1024))
    max_artifact_bytes: int = field(default_factory=lambda: _env_int("LAKEML_SERVER_MAX_ARTIFACT", 10 * 1024 ** 3))
    sql_row_limit: int = field(default_factory=lambda: _env_int("LAKEML_SERVER_SQL_ROWS", 100_000))
    sql_time_limit: float = field(default_factory=lambda: float(os.environ.get("LAKEML_SERVER_SQL_SECONDS", "30")))
    # seconds between the shared committer's commits (one Iceberg commit per table per tick for all clients)
    commit_interval: float = field(default_factory=lambda: float(os.environ.get("LAKEML_SERVER_COMMIT_INTERVAL", "1")))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")
