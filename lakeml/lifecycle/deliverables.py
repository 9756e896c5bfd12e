"""Checking a user task's deliverables when it is completed: lakeml checks each kind itself.

``evidence`` maps a deliverable's key (``link:mart``, ``doc:mart``, ``artifact:model``,
``table:sales.churn_mart``, ``model_version``, ``metric:auc``) to what the completer hands in:

* ``link:<name>``: the URL (or any non-empty reference);
* ``doc:<name>``: the text, or the path of a local file; it is stored in the artifact store;
* ``artifact:<path>``: the run id holding the file (default: the ``run_id`` of the completion,
  else the newest run of the project's experiments that has it);
* ``table:<identifier>``: nothing (the table must exist; its current snapshot id is recorded);
* ``model_version`` and ``metric:<key>``: a model reference (``churn/3``, ``churn@candidate``;
  default: the completion's ``model``, else the latest version of the project's models);
* ``approval:<role>``: nothing; the completer holds the role or someone holding it approved the task.
"""

from __future__ import annotations

import hashlib
import operator
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeml.errors import LakemlError
from lakeml.lifecycle.process import Deliverable
from lakeml.lifecycle.records import Project, Task

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.registry.client import RegistryClient
    from lakeml.registry.records import ModelVersion
    from lakeml.storage.artifacts import ArtifactStore
    from lakeml.storage.tables import TableStore
    from lakeml.tracking.client import TrackingClient

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@dataclass
class Completion:
    """What a completer hands in."""

    evidence: dict[str, str]
    run_id: str | None
    model: str | None
    actor: str | None
    actor_roles: frozenset[str]


class Checker:
    """Checks deliverables against the lake's components (tracking, registry, catalog, artifacts)."""

    def __init__(self, store: "TableStore", artifacts: "ArtifactStore", tracking: "TrackingClient",
                 registry: "RegistryClient"):
        self.store = store
        self.artifacts = artifacts
        self.tracking = tracking
        self.registry = registry

    def check(self, project: Project, task: Task, required: list[Deliverable],
              c: Completion) -> tuple[list[dict[str, Any]], list[str]]:
        """(what was delivered, as records; what is missing, as sentences)."""
        done: list[dict[str, Any]] = []
        missing: list[str] = []
        mv_cache: dict[str, Any] = {}

        def version() -> "ModelVersion | str":  # the model version, or why there is none
            if "v" not in mv_cache:
                mv_cache["v"] = self._model_version(project, c.evidence.get("model_version") or c.model)
            return mv_cache["v"]

        for d in required:
            try:
                rec, why = self._one(d, project, task, c, version)
            except LakemlError as e:
                rec, why = None, f"{d}: {e}"
            if why:
                missing.append(why)
            else:
                done.append(rec)
        return done, missing

    def _one(self, d: Deliverable, project: Project, task: Task, c: Completion,
             version: Any) -> tuple[dict[str, Any] | None, str | None]:
        val = c.evidence.get(d.key)
        if d.kind == "link":
            if not val or not str(val).strip():
                return None, f"{d.key}: no link given (pass --set {d.key}=<url>)"
            return {"kind": "link", "name": d.name, "uri": str(val).strip()}, None
        if d.kind == "doc":
            if not val or not str(val).strip():
                return None, f"{d.key}: no document given (pass --set {d.key}=<text or file path>)"
            return self._store_doc(project, d.name, str(val)), None
        if d.kind == "approval":
            if d.name in c.actor_roles:
                return {"kind": "approval", "name": d.name, "value": c.actor}, None
            if d.name in task.approvals:
                return {"kind": "approval", "name": d.name, "value": task.approvals[d.name]}, None
            return None, (f"{d.key}: no approval by a {d.name!r} yet (a user holding that role completes the "
                          f"task or runs 'lakeml tasks approve {project.name} {task.task_id}')")
        if d.kind == "table":
            return self._table(d.name)
        if d.kind == "artifact":
            return self._artifact(project, d.name, val or c.run_id)
        mv = version()
        if isinstance(mv, str):
            return None, f"{d}: {mv}"
        if d.kind == "model_version":
            return {"kind": "model_version", "name": mv.model_name, "value": str(mv.version),
                    "uri": f"models:/{mv.model_name}/{mv.version}", "source_uri": mv.source_uri,
                    "run_id": mv.run_id}, None
        # metric
        if mv.run_id is None:
            return None, f"{d}: version {mv.version} of {mv.model_name!r} has no source run to read metrics from"
        run = self.tracking.get_run(mv.run_id)
        x = run.metrics.get(d.name)
        if x is None:
            return None, (f"{d}: run {mv.run_id} of models:/{mv.model_name}/{mv.version} did not log "
                          f"metric {d.name!r}")
        if not _OPS[d.op](x, d.bound):
            return None, f"{d}: models:/{mv.model_name}/{mv.version} has {d.name} = {x:g}"
        return {"kind": "metric", "name": d.name, "value": x, "uri": f"models:/{mv.model_name}/{mv.version}",
                "run_id": mv.run_id}, None

    def _model_version(self, project: Project, ref: str | None) -> "ModelVersion | str":
        if ref:
            return self.registry.get_model_version(ref)
        for name in project.models:
            versions = self.registry.registered_versions(name)
            if versions:
                return versions[-1]
        return ("no model version given and none registered for the project's models "
                f"({', '.join(project.models) or 'none linked'}); pass --model <name>/<version>")

    def _table(self, ident: str) -> tuple[dict[str, Any] | None, str | None]:
        from pyiceberg.exceptions import NoSuchTableError

        if "." not in ident:
            return None, f"table:{ident}: name the table with its namespace, e.g. table:sales.{ident}"
        try:
            tbl = self.store.catalog.load_table(ident)
        except NoSuchTableError:
            return None, f"table:{ident}: no such Iceberg table in the catalog"
        snap = tbl.current_snapshot()
        if snap is None:
            return None, f"table:{ident}: the table exists but holds no snapshot (no data written yet)"
        return {"kind": "table", "name": ident, "snapshot_id": snap.snapshot_id,
                "uri": tbl.metadata_location}, None

    def _artifact(self, project: Project, path: str, run_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
        from lakeml.storage.artifacts import clean_artifact_path

        path = clean_artifact_path(path)
        runs = [run_id] if run_id else self._project_runs(project)
        for rid in runs:
            run = self.tracking.get_run(rid)
            files = set(self.artifacts.walk(run.artifact_uri))
            if any(f == path or f.startswith(path + "/") for f in files):
                return {"kind": "artifact", "name": path, "run_id": rid, "uri": f"{run.artifact_uri}/{path}",
                        "value": f"runs:/{rid}/{path}"}, None
        if run_id:
            return None, f"artifact:{path}: run {run_id} stored no file {path!r}"
        return None, (f"artifact:{path}: no run of the project's experiments "
                      f"({', '.join(project.experiments) or 'none linked'}) stored {path!r}; pass --run <run_id>")

    def _project_runs(self, project: Project) -> list[str]:
        if not project.experiments:
            return []
        df = self.tracking.query.search_runs(list(project.experiments), order_by=["attributes.start_time DESC"],
                                             max_results=50)
        return list(df["run_id"]) if "run_id" in df.columns else []

    def _store_doc(self, project: Project, name: str, value: str) -> dict[str, Any]:
        src = Path(value) if len(value) < 4096 and "\n" not in value else None
        folder = f"{self.artifacts.root}/projects/{project.project_id}/docs/{name}"
        if src is not None and src.is_file():
            data = src.read_bytes()
            fname = src.name
        else:
            data, fname = value.encode("utf-8"), f"{name}.md"
        digest = hashlib.sha256(data).hexdigest()
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, fname)
            Path(local).write_bytes(data)
            stored = self.artifacts.put_file(local, folder, f"{digest[:12]}/{fname}")
        return {"kind": "doc", "name": name, "uri": stored.uri, "sha256": digest, "size": len(data)}
