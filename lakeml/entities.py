"""Plain, frozen records that the client returns and that serialise to JSON."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class RunStatus(str, Enum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


def _jsonable(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": JSON has no literal for them
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO strings, NaN/inf as strings)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class Experiment(_Record):
    experiment_id: str
    name: str
    artifact_location: str
    created_at: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric(_Record):
    key: str
    value: float
    step: int = 0
    timestamp: int | None = None  # milliseconds since the epoch, as MLflow


@dataclass(frozen=True)
class Param(_Record):
    key: str
    value: str


@dataclass(frozen=True)
class RunTag(_Record):
    key: str
    value: str


@dataclass(frozen=True)
class DatasetInput(_Record):
    """One input a run read: an Iceberg table snapshot or a file with a digest."""

    kind: str  # "iceberg" or "file"
    name: str
    role: str = "train"
    table: str | None = None
    snapshot_id: int | None = None
    schema_id: int | None = None
    uri: str | None = None
    digest: str | None = None
    catalog: str | None = None


@dataclass(frozen=True)
class ArtifactInfo(_Record):
    path: str
    size: int | None = None
    sha256: str | None = None
    is_dir: bool = False


@dataclass(frozen=True)
class Run(_Record):
    run_id: str
    experiment_id: str
    experiment_name: str | None
    run_name: str | None
    status: RunStatus
    start_time: datetime | None
    end_time: datetime | None
    parent_run_id: str | None = None
    user: str | None = None
    source: str | None = None
    git_commit: str | None = None
    error: str | None = None
    artifact_uri: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value per key
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[DatasetInput] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.run_id
