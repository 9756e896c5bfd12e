"""Frozen records of the registry: models, versions, aliases, deployments, events, lineage."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from lakeml.entities import DatasetInput, _jsonable, _Record


class _Stored(_Record):
    """A record whose ``STORED`` fields are kept as JSON in ``registry_events.before/after``."""

    STORED: ClassVar[tuple[str, ...]] = ()
    TIMES: ClassVar[tuple[str, ...]] = ()

    def stored(self) -> dict[str, Any]:
        return {k: _jsonable(getattr(self, k)) for k in self.STORED}

    def to_json(self) -> str:
        return json.dumps(self.stored(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_stored(cls, data: dict[str, Any]):
        kw = {k: data.get(k) for k in cls.STORED if k in data}
        for k in cls.TIMES:
            if isinstance(kw.get(k), str):
                kw[k] = datetime.fromisoformat(kw[k])
        return cls(**{k: v for k, v in kw.items() if v is not None or k not in _DEFAULTED})

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


_DEFAULTED = {"tags", "requirements"}


@dataclass(frozen=True)
class RegisteredModel(_Stored):
    """A model in the registry, with its latest version and aliases."""

    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    gates: dict[str, Any] | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None
    latest_version: int | None = None  # derived, not stored
    aliases: dict[str, int] = field(default_factory=dict)  # derived, not stored

    STORED: ClassVar = ("name", "description", "tags", "gates", "created_at", "created_by", "updated_at",
                        "updated_by")
    TIMES: ClassVar = ("created_at", "updated_at")


@dataclass(frozen=True)
class ModelVersion(_Stored):
    """One registered version: where the model is, how to load it, and the run that made it."""

    model_name: str
    version: int
    source_uri: str
    run_id: str | None = None
    artifact_path: str | None = None
    flavor: str | None = None
    signature: dict[str, Any] | None = None
    requirements: list[str] = field(default_factory=list)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    created_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None
    aliases: list[str] = field(default_factory=list)  # derived, not stored

    STORED: ClassVar = ("model_name", "version", "source_uri", "run_id", "artifact_path", "flavor", "signature",
                        "requirements", "description", "tags", "created_at", "created_by", "updated_at",
                        "updated_by")
    TIMES: ClassVar = ("created_at", "updated_at")

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["model_uri"] = self.model_uri
        return out


@dataclass(frozen=True)
class ModelAlias(_Stored):
    """An alias pointing at one version (``version`` is None once deleted)."""

    model_name: str
    alias: str
    version: int | None
    previous_version: int | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    STORED: ClassVar = ("model_name", "alias", "version", "previous_version", "updated_at", "updated_by")
    TIMES: ClassVar = ("updated_at",)


@dataclass(frozen=True)
class Deployment(_Stored):
    """A model version running in an environment and service; ``retired_at`` is None while it runs."""

    deployment_id: str
    model_name: str
    version: int
    environment: str
    service: str
    service_version: str | None = None
    deployed_at: datetime | None = None
    deployed_by: str | None = None
    retired_at: datetime | None = None
    retired_by: str | None = None
    retire_reason: str | None = None

    STORED: ClassVar = ("deployment_id", "model_name", "version", "environment", "service", "service_version",
                        "deployed_at", "deployed_by", "retired_at", "retired_by", "retire_reason")
    TIMES: ClassVar = ("deployed_at", "retired_at")

    @property
    def active(self) -> bool:
        return self.retired_at is None


@dataclass(frozen=True)
class RegistryEvent(_Record):
    """One row of ``registry_events``: who changed what, when, from what to what."""

    event_seq: int
    event_id: str
    event_time: datetime
    event_type: str
    outcome: str
    model_name: str
    entity: str
    entity_key: str
    version: int | None = None
    alias: str | None = None
    environment: str | None = None
    service: str | None = None
    actor: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    message: str | None = None
    run_id: str | None = None
    host: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class ModelLineage(_Record):
    """Where a model version comes from: its run, params, metrics, code version and input snapshots."""

    model_name: str
    version: int
    model_uri: str
    source_uri: str
    flavor: str | None
    aliases: list[str]
    deployments: list[Deployment]
    run_id: str | None
    run_name: str | None = None
    experiment_name: str | None = None
    status: str | None = None
    user: str | None = None
    source: str | None = None
    git_commit: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[DatasetInput] = field(default_factory=list)


@dataclass(frozen=True)
class TrainedModel(_Record):
    """A model version whose run read a given table (the answer of ``models_trained_on``)."""

    model_name: str
    version: int
    run_id: str
    table: str
    snapshot_id: int | None
    role: str
    aliases: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"
