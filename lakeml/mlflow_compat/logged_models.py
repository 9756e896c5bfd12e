"""MLflow 3's logged models over the lake (no ``mlflow`` import): the ``logged_models`` table.

``mlflow.<flavor>.log_model`` first creates a *logged model* (``m-<hex>``), uploads its folder to
the model's ``artifact_location`` and links it to the run. Here a logged model of a run lives
below that run's artifacts, at ``<run artifact uri>/<name>``: the same place as a model saved by
``lake.log_model(run_id, model, name)``, so ``runs:/<run_id>/<name>`` and
``lake.register_model(name, run_id=..., artifact_path=<name>)`` find it. Its record (name,
status, tags, params) is an append-only log in the ``logged_models`` table; the latest row wins.
Used by the ``lakeml://`` MLflow plugin (``lakeml/mlflow_plugin``), and usable by the server.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Mapping

from lakeml import validation as v
from lakeml.clock import us_to_datetime
from lakeml.errors import InvalidInputError, NotFoundError
from lakeml.mlflow_compat.convert import kv_list, ms

TABLE = "logged_models"
STATUSES = ("PENDING", "READY", "FAILED")
#: MLflow's LoggedModelStatus proto names of each lakeml status
PROTO_STATUS = {"PENDING": "LOGGED_MODEL_PENDING", "READY": "LOGGED_MODEL_READY",
                "FAILED": "LOGGED_MODEL_UPLOAD_FAILED"}
_seq = itertools.count()


@dataclass(frozen=True)
class LoggedModel:
    """One logged model: where its files are, the run that made it, its status, tags and params."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    status: str = "PENDING"
    run_id: str | None = None
    model_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted: bool = False


def status_name(status: Any) -> str:
    """``READY``, ``LOGGED_MODEL_READY`` or MLflow's enum name -> lakeml's status name."""
    s = str(getattr(status, "name", status)).upper().replace("LOGGED_MODEL_", "")
    s = {"UPLOAD_FAILED": "FAILED"}.get(s, s)
    if s not in STATUSES:
        raise InvalidInputError(f"logged model status {status!r} is not one of {', '.join(STATUSES)}")
    return s


def logged_model_dict(m: LoggedModel) -> dict[str, Any]:
    """MLflow's LoggedModel JSON (``info`` and ``data``) of a :class:`LoggedModel`."""
    info = {
        "model_id": m.model_id, "experiment_id": m.experiment_id, "name": m.name,
        "artifact_uri": m.artifact_location, "status": PROTO_STATUS[m.status],
        "creation_timestamp_ms": ms(m.created_at), "last_updated_timestamp_ms": ms(m.updated_at or m.created_at),
        "model_type": m.model_type, "source_run_id": m.run_id, "tags": kv_list(m.tags),
    }
    return {"info": {k: val for k, val in info.items() if val is not None},
            "data": {"params": kv_list(m.params), "metrics": []}}


class LoggedModels:
    """Logged models of one lake (``lake``: a :class:`~lakeml.client.lake.Lake`; only its public verbs
    and its committer's buffer are used)."""

    def __init__(self, lake: Any):
        self.lake = lake

    # -- writes -----------------------------------------------------------------------------------
    def create(self, experiment_id: str, *, name: str | None = None, run_id: str | None = None,
               tags: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
               model_type: str | None = None) -> LoggedModel:
        """A new PENDING model; with ``run_id`` its folder is ``<run artifacts>/<name>`` (made unique in the run)."""
        from lakeml.storage.artifacts import clean_artifact_path

        model_id = f"m-{uuid.uuid4().hex}"
        name = name or f"model-{model_id[2:10]}"
        if "/" in name or clean_artifact_path(name) != name:
            raise InvalidInputError(f"model name {name!r} must be one plain path segment (no '/', '.' or '..'), "
                                    "e.g. 'model'")
        if run_id is not None:
            run_id = v.validate_run_id(run_id)
            taken = {m.name for m in self.search(run_id=run_id)}
            folder = name if name not in taken else f"{name}-{model_id[2:10]}"
            location = f"{self.lake.tracking.artifact_uri(run_id)}/{folder}"
        else:
            location = f"{self.lake.artifacts.root}/{experiment_id}/models/{model_id}/artifacts"
        now = us_to_datetime(self.lake.clock())
        m = LoggedModel(model_id, str(experiment_id), name, location, "PENDING", run_id, model_type,
                        _strings(tags, "tag"), _strings(params, "param"), now, now)
        self._write(m)
        return m

    def set_tags(self, model_id: str, tags: Mapping[str, Any]) -> LoggedModel:
        m = self.get(model_id)
        return self._write(replace(m, tags={**m.tags, **_strings(tags, "tag")}))

    def delete_tag(self, model_id: str, key: str) -> LoggedModel:
        m = self.get(model_id)
        if key not in m.tags:
            raise NotFoundError(f"logged model {model_id} has no tag {key!r}")
        return self._write(replace(m, tags={k: val for k, val in m.tags.items() if k != key}))

    def finalize(self, model_id: str, status: Any) -> LoggedModel:
        return self._write(replace(self.get(model_id), status=status_name(status)))

    def delete(self, model_id: str) -> None:
        self._write(replace(self.get(model_id), deleted=True))

    def _write(self, m: LoggedModel) -> LoggedModel:
        now = self.lake.clock()
        m = replace(m, updated_at=us_to_datetime(now))
        created = int(m.created_at.timestamp() * 1_000_000) if m.created_at else now
        self.lake.committer.buffer(TABLE).add((
            m.model_id, m.experiment_id, m.run_id, m.name, m.artifact_location, m.status, m.model_type,
            sorted(m.tags.items()), sorted(m.params.items()), created, now, next(_seq), m.deleted))
        return m

    # -- reads ------------------------------------------------------------------------------------
    def get(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        """The model ``model_id``; NotFoundError if there is none (or it was deleted)."""
        found = self._latest("model_id = $1", [str(model_id)])
        if not found or (found[0].deleted and not allow_deleted):
            raise NotFoundError(f"logged model {model_id!r} does not exist in this lake; models:/<model_id> URIs "
                                "name models logged with mlflow.<flavor>.log_model")
        return found[0]

    def search(self, experiment_ids: Iterable[str] | None = None, *, run_id: str | None = None) -> list[LoggedModel]:
        """Models of some experiments (or all), or of one run; newest first, deleted ones left out."""
        conds, args = [], []
        if experiment_ids is not None:
            args.append([str(e) for e in experiment_ids])
            conds.append(f"experiment_id IN (SELECT unnest(${len(args)}::VARCHAR[]))")
        if run_id is not None:
            args.append(run_id)
            conds.append(f"run_id = ${len(args)}")
        found = self._latest(" AND ".join(conds) or "TRUE", args)
        return sorted((m for m in found if not m.deleted), key=lambda m: m.created_at or 0, reverse=True)

    def _latest(self, where: str, args: list[Any]) -> list[LoggedModel]:
        rows = self.lake.sql_arrow(
            f"SELECT * FROM lakeml.{TABLE} WHERE {where} QUALIFY row_number() OVER "
            "(PARTITION BY model_id ORDER BY logged_at DESC, event_seq DESC) = 1", params=args).to_pylist()
        return [LoggedModel(r["model_id"], r["experiment_id"], r["name"], r["artifact_location"], r["status"],
                            r["run_id"], r["model_type"], dict(r["tags"] or []), dict(r["params"] or []),
                            r["created_at"], r["logged_at"], r["deleted"]) for r in rows]


def _strings(mapping: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    out = {}
    for k, val in (mapping or {}).items():
        key = v.validate_key(k, f"logged model {what}")
        out[key] = v.tag_value(val, key)
    return out
