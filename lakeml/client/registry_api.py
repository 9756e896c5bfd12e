"""Model registry methods of the client; the ledger, rules and flavors live in :mod:`lakeml.registry`.

Registry writes are synchronous compare-and-swap commits to ``registry_events`` (see
:mod:`lakeml.registry.ledger`); they return once the change is durable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from lakeml import validation as v
from lakeml.clock import us_to_datetime
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError
from lakeml.registry import changes, names
from lakeml.registry.checkpoints import Checkpoint, RetentionPolicy, step_folder
from lakeml.registry.gates import GateFacts, Gates
from lakeml.registry.mlmodel import MLMODEL, ModelInfo
from lakeml.registry.records import (
    Deployment,
    ModelAlias,
    ModelLineage,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    TrainedModel,
)

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.registry.ledger import Ledger
    from lakeml.registry.state import RegistryState


def _tags(tags: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    return {v.validate_key(k, f"{what} tag"): v.tag_value(val, k) for k, val in (tags or {}).items()}


def _text(value: str | None, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if value is not None and len(value) > v.MAX_PARAM_VALUE_LENGTH:
        raise InvalidInputError(f"{what} is {len(value)} characters; the limit is {v.MAX_PARAM_VALUE_LENGTH}")
    return value


class RegistryMixin:
    """Methods of :class:`~lakeml.client.lake.Lake` for the model registry, models and checkpoints."""

    #: Who registry changes are recorded as; None means the OS user.
    registry_actor: str | None = None

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def registry(self) -> "Ledger":
        """The registry ledger of this lake (created on first use)."""
        led = self.__dict__.get("_registry_ledger")
        if led is None:
            from lakeml.registry.ledger import Ledger

            with self._lock:
                led = self.__dict__.setdefault("_registry_ledger", Ledger(self.store, clock=self.clock))
        return led

    def _actor(self) -> str | None:
        from lakeml.client import runinfo

        return self.registry_actor or runinfo.current_user()

    def _commit(self, fn, **kw: Any) -> Any:
        actor = self._actor()

        def plan(st: "RegistryState"):
            return fn(st, now=us_to_datetime(self.clock()), actor=actor, **kw)

        return self.registry.commit(plan, actor=actor)

    def _state_now(self) -> "RegistryState":
        return self.registry.state()

    # -- models -------------------------------------------------------------------------------
    def create_model(self, name: str, *, description: str | None = None,
                     tags: Mapping[str, Any] | None = None) -> RegisteredModel:
        """Create a registered model (returns the existing one if ``name`` is taken)."""
        return self._commit(changes.create_model, name=names.model_name(name),
                            description=_text(description, "description"), tags=_tags(tags, "model"))

    def update_model(self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None,
                     delete_tags: Iterable[str] = ()) -> RegisteredModel:
        """Change a model's description or tags."""
        return self._commit(changes.update_model, name=names.model_name(name),
                            description=_text(description, "description"), set_tags=_tags(tags, "model"),
                            delete_tags=list(delete_tags))

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its latest version and aliases."""
        return self._state_now().model(names.model_name(name))

    def list_models(self) -> list[RegisteredModel]:
        st = self._state_now()
        return [st.model(n) for n in sorted(st.models)]

    def search_models(self, query: str | None = None, *, tags: Mapping[str, str] | None = None) -> list[RegisteredModel]:
        """Models whose name or description contains ``query`` (case-insensitive) and that carry ``tags``."""
        q = (query or "").lower()
        out = []
        for m in self.list_models():
            if q and q not in m.name.lower() and q not in (m.description or "").lower():
                continue
            if tags and any(m.tags.get(k) != str(val) for k, val in tags.items()):
                continue
            out.append(m)
        return out

    # -- versions -----------------------------------------------------------------------------
    def register_model(self, name: str, *, run_id: str | None = None, artifact_path: str = "model",
                       source_uri: str | None = None, description: str | None = None,
                       tags: Mapping[str, Any] | None = None) -> ModelVersion:
        """Register the model stored at ``runs:/<run_id>/<artifact_path>`` (or at ``source_uri``) as the next
        version of ``name``; creates the model on its first version. Version numbers are gap-free."""
        import yaml

        from lakeml.storage.artifacts import ArtifactStore, clean_artifact_path

        name = names.model_name(name)
        tags = _tags(tags, "version")
        description = _text(description, "description")
        if run_id is not None:
            root = self.artifact_uri(v.validate_run_id(run_id))  # NotFoundError for an unknown run
            path = clean_artifact_path(artifact_path)
            source_uri = f"{root}/{path}" if path else root
            store, rel = self.artifacts, path
        elif source_uri is not None:
            path = None
            store, root, rel = ArtifactStore(source_uri, self.config.properties), source_uri, ""
        else:
            raise InvalidInputError("register_model needs run_id= (and artifact_path=) or source_uri=")
        files = list(store.walk(root, rel))
        if not files:
            where = f"runs:/{run_id}/{path}" if run_id else source_uri
            raise NotFoundError(f"nothing is stored at {where}; log the model first with "
                                "lakeml.log_model(model, 'model') or pass the right artifact_path")
        meta: dict[str, Any] = {}
        mfile = f"{rel}/{MLMODEL}" if rel else MLMODEL
        if mfile in files:
            meta = yaml.safe_load(store.read_bytes(f"{root}/{mfile}")) or {}
        return self._commit(changes.register, name=name, source_uri=source_uri, run_id=run_id, artifact_path=path,
                            flavor=meta.get("flavor"), signature=meta.get("signature"),
                            requirements=list(meta.get("requirements") or []), description=description, tags=tags)

    def _ref(self, name: str, version: Any = None) -> names.ModelRef:
        if version is not None:
            if isinstance(version, str) and version.lower() == "latest":
                return names.ModelRef(names.model_name(name))
            return names.ModelRef(names.model_name(name), version=names.version(version))
        text = name[len("models:"):].lstrip("/") if isinstance(name, str) and name.startswith("models:") else name
        return names.parse_ref(text)

    def get_model_version(self, name: str, version: int | str | None = None) -> ModelVersion:
        """A version by number (``("churn", 3)``), or by reference: ``"churn@champion"``, ``"churn/3"``,
        ``"churn/latest"``, ``"models:/churn@champion"``."""
        return self._state_now().resolve(self._ref(name, version))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._state_now().resolve(names.ModelRef(names.model_name(name), alias=names.alias(alias)))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return self._state_now().list_versions(names.model_name(name))

    def search_model_versions(self, name: str | None = None, *, run_id: str | None = None,
                              tags: Mapping[str, str] | None = None) -> list[ModelVersion]:
        """Versions of one model (or all), optionally made by ``run_id`` or carrying ``tags``."""
        st = self._state_now()
        models = [names.model_name(name)] if name is not None else sorted(st.models)
        out = []
        for m in models:
            for mv in st.list_versions(m):
                if run_id is not None and mv.run_id != run_id:
                    continue
                if tags and any(mv.tags.get(k) != str(val) for k, val in tags.items()):
                    continue
                out.append(mv)
        return out

    def update_model_version(self, name: str, version: int, *, description: str | None = None,
                             tags: Mapping[str, Any] | None = None, delete_tags: Iterable[str] = ()) -> ModelVersion:
        return self._commit(changes.update_version, name=names.model_name(name), version=names.version(version),
                            description=_text(description, "description"), set_tags=_tags(tags, "version"),
                            delete_tags=list(delete_tags))

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> ModelVersion:
        """Tag a version, e.g. ``("churn", 3, "approved_by", "alice")`` for an approver gate."""
        return self.update_model_version(name, version, tags={key: value})

    def delete_model_version_tag(self, name: str, version: int, key: str) -> ModelVersion:
        return self.update_model_version(name, version, delete_tags=[key])

    # -- aliases ------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> ModelAlias:
        """Point ``alias`` at ``version`` (moving it from any other version), if the model's gates allow.

        Raises :class:`~lakeml.errors.GateError` listing each failed rule; the refusal is recorded.
        """
        return self._commit(changes.set_alias, name=names.model_name(name), alias=names.alias(alias),
                            version=names.version(version), facts=self._facts_fn())

    def delete_alias(self, name: str, alias: str) -> ModelAlias:
        return self._commit(changes.delete_alias, name=names.model_name(name), alias=names.alias(alias))

    # -- gates --------------------------------------------------------------------------------
    def set_gates(self, name: str, *, min_metrics: Mapping[str, float] | None = None,
                  max_metrics: Mapping[str, float] | None = None, required_artifacts: Iterable[str] | None = None,
                  required_tags: Mapping[str, Any] | Iterable[str] | None = None,
                  aliases: Iterable[str] | None = None, environments: Iterable[str] | None = None) -> Gates:
        """Declare the rules a version of ``name`` must pass before it gets an alias or an environment.

        ``aliases`` / ``environments`` limit which promotions are guarded (default: all). Replaces
        the previous rules; ``set_gates(name)`` with no rules removes them.
        """
        gates = Gates.build(min_metrics=min_metrics, max_metrics=max_metrics, required_artifacts=required_artifacts,
                            required_tags=required_tags, aliases=aliases, environments=environments)
        return self._commit(changes.set_gates, name=names.model_name(name), gates=gates)

    def get_gates(self, name: str) -> Gates | None:
        raw = self.get_model(name).gates
        return Gates.from_dict(raw) if raw else None

    def check_gates(self, name: str, version: int, *, alias: str | None = None,
                    environment: str | None = None) -> list[str]:
        """Dry run: the rules ``version`` would fail for that promotion (nothing is recorded)."""
        st = self._state_now()
        mv = st.version(names.model_name(name), names.version(version))
        fails, _ = changes.gate_failures(st, mv, self._facts_fn(), alias=names.alias(alias) if alias else None,
                                  environment=names.environment(environment) if environment else None)
        return fails

    def _facts_fn(self):
        memo: dict[tuple[str, int], GateFacts] = {}

        def facts(mv: ModelVersion) -> GateFacts:
            key = (mv.model_name, mv.version)
            if key not in memo:
                if mv.run_id is None:
                    memo[key] = GateFacts()
                else:
                    run = self.get_run(mv.run_id)
                    memo[key] = GateFacts(dict(run.metrics), frozenset(self.artifacts.walk(run.artifact_uri)),
                                          {}, mv.run_id)
            return memo[key]

        return facts

    # -- deployments --------------------------------------------------------------------------
    def record_deployment(self, name: str, version: int, *, environment: str, service: str,
                          service_version: str | None = None, replace: bool = True) -> Deployment:
        """Record that ``version`` now runs in ``environment`` inside ``service`` (``service_version``).

        With ``replace`` (default) the deployment it replaces in that environment and service is retired.
        The model's gates for ``environment`` apply (a refusal raises GateError and is recorded).
        """
        if service_version is not None:
            service_version = v.tag_value(service_version, "service_version")
        return self._commit(changes.deploy, name=names.model_name(name), version=names.version(version),
                            environment=names.environment(environment), service=names.environment(service, "service"),
                            service_version=service_version, replace=bool(replace), facts=self._facts_fn())

    def retire_deployment(self, name: str, *, environment: str | None = None, service: str | None = None,
                          deployment_id: str | None = None, reason: str | None = None) -> list[Deployment]:
        """Mark the matching active deployments of ``name`` as retired; returns them."""
        return self._commit(changes.retire, name=names.model_name(name),
                            environment=names.environment(environment) if environment else None,
                            service=names.environment(service, "service") if service else None,
                            deployment_id=deployment_id, reason=_text(reason, "reason"))

    def list_deployments(self, name: str | None = None, *, environment: str | None = None,
                         active_only: bool = True) -> list[Deployment]:
        st = self._state_now()
        if name is not None:
            st.model(names.model_name(name))
        if active_only:
            return st.active_deployments(name, environment=environment)
        return sorted((d for d in st.deployments.values() if (name is None or d.model_name == name)
                       and (environment is None or d.environment == environment)),
                      key=lambda d: (d.model_name, d.deployed_at or datetime.min))

    def registry_events(self, name: str | None = None) -> list[RegistryEvent]:
        """The audit log (of one model): every change and every refused promotion, oldest first."""
        if name is not None:
            self.get_model(name)
        return self.registry.events(name)

    def sync_registry(self) -> dict[str, int]:
        """Catch the projection tables up with the ledger (done after every change; for recovery)."""
        return self.registry.sync()

    # -- lineage ------------------------------------------------------------------------------
    def model_lineage(self, name: str, version: int | str | None = None) -> ModelLineage:
        """Version -> run -> params, metrics, code version (git commit) and the exact input snapshots."""
        st = self._state_now()
        mv = st.resolve(self._ref(name, version))
        deps = st.active_deployments(mv.model_name, version=mv.version)
        base = dict(model_name=mv.model_name, version=mv.version, model_uri=mv.model_uri, source_uri=mv.source_uri,
                    flavor=mv.flavor, aliases=mv.aliases, deployments=deps, run_id=mv.run_id)
        if mv.run_id is None:
            return ModelLineage(**base)
        run = self.get_run(mv.run_id)
        return ModelLineage(**base, run_name=run.run_name, experiment_name=run.experiment_name,
                            status=run.status.value, user=run.user, source=run.source, git_commit=run.git_commit,
                            params=dict(run.params), metrics=dict(run.metrics), tags=dict(run.tags),
                            inputs=list(run.inputs))

    def models_trained_on(self, table: str, *, snapshot_id: int | None = None) -> list[TrainedModel]:
        """Model versions whose run read ``table`` (at ``snapshot_id``, if given): the reverse of lineage."""
        if not isinstance(table, str) or "." not in table:
            raise InvalidInputError(f"table {table!r} must be an identifier 'namespace.table'")
        if snapshot_id is not None and (isinstance(snapshot_id, bool) or not isinstance(snapshot_id, int)):
            raise InvalidInputError(f"snapshot_id must be an integer, got {snapshot_id!r}")
        self._read_ready()
        sql = ("SELECT DISTINCT run_id, table_identifier, snapshot_id, role FROM lakeml.inputs "
               "WHERE kind = 'iceberg' AND (table_identifier = $1 OR name = $1)")
        args: list[Any] = [table]
        if snapshot_id is not None:
            sql += " AND snapshot_id = $2"
            args.append(snapshot_id)
        rows = self.engine.arrow(sql, args, tables=["inputs"]).to_pylist()
        if not rows and snapshot_id is None:
            self._load_foreign_table(table)  # NotFoundError for a table that does not exist at all
        st = self._state_now()
        by_run: dict[str, list[ModelVersion]] = {}
        for vs in st.versions.values():
            for mv in vs.values():
                if mv.run_id:
                    by_run.setdefault(mv.run_id, []).append(mv)
        out = []
        for r in rows:
            for mv in by_run.get(r["run_id"], []):
                envs = sorted({d.environment for d in st.active_deployments(mv.model_name, version=mv.version)})
                out.append(TrainedModel(mv.model_name, mv.version, r["run_id"], r["table_identifier"],
                                        r["snapshot_id"], r["role"], st.aliases_of(mv.model_name, mv.version), envs))
        return sorted(out, key=lambda t: (t.model_name, t.version, t.snapshot_id or 0, t.role))

    # -- models as artifacts ------------------------------------------------------------------
    def log_model(self, run_id: str, model: Any, artifact_path: str = "model", *, flavor: str | None = None,
                  signature: Any = None, input_example: Any = None, pip_requirements: list[str] | None = None,
                  extra_pip_requirements: list[str] | None = None, code_paths: list[str] | None = None,
                  metadata: Mapping[str, Any] | None = None, registered_model_name: str | None = None) -> ModelInfo:
        """Save ``model`` under the run's artifacts with an MLmodel file (flavor, signature, requirements).

        ``flavor``: sklearn, python or onnx (detected when omitted). ``signature``: a ModelSignature, a dict
        ``{"inputs": ..., "outputs": ...}`` or ``(X_sample, y_sample)``. With ``registered_model_name`` the
        model is also registered as the next version of that model.
        """
        from lakeml.registry import flavors
        from lakeml.storage.artifacts import clean_artifact_path

        path = clean_artifact_path(artifact_path)
        if not path:
            raise InvalidInputError("artifact_path must name a folder inside the run, e.g. 'model'")
        if registered_model_name is not None:
            names.model_name(registered_model_name)
        run_uri = self.artifact_uri(run_id)
        if any(True for _ in self.artifacts.walk(run_uri, path)):
            raise ConflictError(f"run {run_id} already has artifacts at {path!r}; log the model under another "
                                "artifact_path (logged models are never overwritten)")
        tmp = Path(tempfile.mkdtemp(prefix="lakeml-model-"))
        try:
            data = flavors.save(model, tmp, artifact_path=path, run_id=run_id, flavor=flavor, signature=signature,
                                input_example=input_example, pip_requirements=pip_requirements,
                                extra_pip_requirements=extra_pip_requirements, code_paths=code_paths,
                                metadata=dict(metadata or {}))
            self.log_artifacts(run_id, tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        info = ModelInfo.from_mlmodel(data, f"runs:/{run_id}/{path}")
        if registered_model_name is not None:
            mv = self.register_model(registered_model_name, run_id=run_id, artifact_path=path)
            info = dataclasses.replace(info, registered_version=mv.version)
        return info

    def _model_location(self, uri: str) -> tuple[str, str]:
        """``(storage URI of the model folder, canonical model URI)`` for any accepted model URI."""
        parsed = names.parse_model_uri(uri)
        if parsed.scheme == "models":
            mv = self._state_now().resolve(parsed.ref)
            return mv.source_uri, mv.model_uri
        if parsed.scheme == "runs":
            from lakeml.storage.artifacts import clean_artifact_path

            base = self.artifact_uri(parsed.run_id)
            path = clean_artifact_path(parsed.path)
            return (f"{base}/{path}" if path else base), uri
        loc = parsed.location
        if "://" not in loc:
            loc = Path(loc).expanduser().resolve().as_uri()
        return loc, loc

    def _fetch_model(self, uri: str, dst: Path) -> tuple[Path, dict[str, Any], str]:
        from lakeml.registry import mlmodel
        from lakeml.storage.artifacts import ArtifactStore

        loc, canonical = self._model_location(uri)
        if loc.startswith("file://") and Path(loc[7:]).is_dir():
            folder = Path(loc[7:])
        else:
            try:
                folder = ArtifactStore(loc, self.config.properties).download(loc, "", dst)
            except NotFoundError:
                raise NotFoundError(f"no model is stored at {uri} ({loc}); log it with lakeml.log_model()") from None
        return folder, mlmodel.read(folder), canonical

    def get_model_info(self, uri: str) -> ModelInfo:
        """The MLmodel metadata of a model URI (flavor, signature, requirements) without loading it."""
        tmp = Path(tempfile.mkdtemp(prefix="lakeml-model-"))
        try:
            _, data, canonical = self._fetch_model(uri, tmp)
            return ModelInfo.from_mlmodel(data, canonical)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def load_model(self, uri: str, *, dst_path: str | os.PathLike | None = None) -> Any:
        """Load a model from ``models:/name/3``, ``models:/name@alias``, ``models:/name/latest``,
        ``runs:/<run_id>/model``, or a model folder (path, file:// or s3:// URI)."""
        from lakeml.registry import flavors

        keep = dst_path is not None
        tmp = Path(dst_path) if keep else Path(tempfile.mkdtemp(prefix="lakeml-model-"))
        try:
            folder, data, _ = self._fetch_model(uri, tmp)
            if (data.get("flavors") or {}).get(data["flavor"], {}).get("code_dir"):
                keep = True  # its code must stay importable
            return flavors.load(folder, data)
        finally:
            if not keep:
                shutil.rmtree(tmp, ignore_errors=True)

    def register_best_model(self, name: str, *, experiment: str | None = None, metric: str, mode: str = "max",
                            artifact_path: str = "model", alias: str | None = "champion",
                            filter_string: str | None = None) -> ModelVersion:
        """Register the model of the best run (by ``metric``, ``mode`` max or min) and give it ``alias``.

        Runs without a model at ``artifact_path`` are skipped; if the best run's model is already a
        version of ``name``, that version is reused. Gates on ``alias`` apply.
        """
        if mode not in ("max", "min"):
            raise InvalidInputError(f"mode must be 'max' or 'min', got {mode!r}")
        v.validate_key(metric, "metric")
        runs = self.search_runs(experiment, filter_string=filter_string, max_results=100_000)
        col = f"metrics.{metric}"
        if runs.height == 0 or col not in runs.columns:
            where = f"experiment {experiment!r}" if experiment else "the lake"
            raise NotFoundError(f"no run in {where} logged metric {metric!r}; nothing to register")
        cands = [r for r in runs.select("run_id", col).iter_rows() if r[1] is not None and not math.isnan(r[1])]
        cands.sort(key=lambda r: r[1], reverse=(mode == "max"))
        for run_id, _ in cands:
            run_uri = self.artifact_uri(run_id)
            if f"{artifact_path}/{MLMODEL}" not in set(self.artifacts.walk(run_uri, artifact_path)):
                continue
            existing = [mv for mv in self._registered_versions(name) if mv.run_id == run_id
                        and mv.artifact_path == artifact_path]
            mv = existing[0] if existing else self.register_model(name, run_id=run_id, artifact_path=artifact_path)
            if alias:
                self.set_alias(name, alias, mv.version)
                mv = self.get_model_version(name, mv.version)
            return mv
        raise NotFoundError(f"no run with metric {metric!r} stored a model at {artifact_path!r}; log one with "
                            "lakeml.log_model(model, artifact_path)")

    def _registered_versions(self, name: str) -> list[ModelVersion]:
        st = self._state_now()
        return st.list_versions(name) if name in st.models else []

    # -- checkpoints --------------------------------------------------------------------------
    def log_checkpoint(self, run_id: str, obj_or_path: Any, *, step: int, metric: float | Mapping[str, float] | None = None,
                       metric_key: str | None = None, mode: str = "min", keep_last: int = 2,
                       keep_best: int = 1) -> Checkpoint:
        """Store a checkpoint of the run at ``step`` and apply the retention policy.

        ``obj_or_path``: a file or folder path (stored as is) or any object (stored with joblib).
        ``metric``: its value (named by ``metric_key``, default "metric") or ``{"val_loss": 0.31}``.
        The last ``keep_last`` steps plus the best ``keep_best`` by the metric (``mode`` min or max) are
        kept; the others are deleted from storage and a 'pruned' row records why.
        """
        import joblib

        policy = RetentionPolicy(keep_last, keep_best, mode)
        step = v.step_value(step, "checkpoint")
        key, value = self._checkpoint_metric(metric, metric_key)
        run_uri = self.artifact_uri(run_id)
        live = self._live_checkpoints(run_id)
        if any(c.step == step for c in live):
            raise ConflictError(f"run {run_id} already has a checkpoint at step {step}; checkpoints are not "
                                "overwritten, use a new step")
        folder = step_folder(step)
        tmp = None
        try:
            if isinstance(obj_or_path, (str, os.PathLike)):
                src = Path(obj_or_path)
                if not src.exists():
                    raise NotFoundError(f"checkpoint path {str(src)!r} does not exist; pass a file, a folder, "
                                        "or the object itself")
                objs = (self.artifacts.put_dir(src, run_uri, folder) if src.is_dir()
                        else [self.artifacts.put_file(src, run_uri, f"{folder}/{src.name}")])
            else:
                tmp = Path(tempfile.mkdtemp(prefix="lakeml-ckpt-"))
                joblib.dump(obj_or_path, tmp / "checkpoint.joblib")
                objs = [self.artifacts.put_file(tmp / "checkpoint.joblib", run_uri, f"{folder}/checkpoint.joblib")]
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        digest = objs[0].sha256 if len(objs) == 1 else hashlib.sha256(
            "".join(f"{o.path}:{o.sha256}\n" for o in objs).encode()).hexdigest()
        now = self.clock()
        ck = Checkpoint(run_id, step, folder, f"{run_uri}/{folder}", key, value, mode, sum(o.size for o in objs),
                        digest, us_to_datetime(now))
        buf = self.committer.buffer("checkpoints")
        buf.add((run_id, step, "saved", ck.path, ck.uri, key, value, mode, ck.size, ck.sha256, None, now))
        live.append(ck)
        kept, pruned = policy.split(live)
        for old, reason in pruned:
            self.artifacts.delete(old.uri)
            buf.add((run_id, old.step, "pruned", old.path, old.uri, old.metric_key, old.metric_value, mode, old.size,
                     old.sha256, reason, self.clock()))
        live[:] = kept
        return ck

    @staticmethod
    def _checkpoint_metric(metric: Any, metric_key: str | None) -> tuple[str | None, float | None]:
        if metric is None:
            return (v.validate_key(metric_key, "metric") if metric_key else None), None
        if isinstance(metric, Mapping):
            if len(metric) != 1:
                raise InvalidInputError(f"metric must be one value or a one-item dict like {{'val_loss': 0.3}}, got "
                                        f"{len(metric)} items")
            (k, val), = metric.items()
            return v.validate_key(k, "metric"), v.metric_value(val, k)
        key = v.validate_key(metric_key or "metric", "metric")
        return key, v.metric_value(metric, key)

    def _live_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """Checkpoints of the run that are still stored (cached per client after the first read)."""
        v.validate_run_id(run_id)
        cache = self.__dict__.setdefault("_checkpoint_cache", {})
        if run_id not in cache:
            self._state(run_id)
            cache[run_id] = [c for c in self.list_checkpoints(run_id)]
        return cache[run_id]

    def list_checkpoints(self, run_id: str, *, include_pruned: bool = False) -> list[Checkpoint]:
        """The run's checkpoints still in storage (or all ever saved), by step."""
        v.validate_run_id(run_id)
        self._read_ready()
        rows = self.engine.arrow(
            "SELECT s.*, p.step IS NOT NULL AS pruned FROM (SELECT * FROM lakeml.checkpoints WHERE run_id = $1 "
            "AND event = 'saved') s LEFT JOIN (SELECT DISTINCT step FROM lakeml.checkpoints WHERE run_id = $1 "
            "AND event = 'pruned') p USING (step) ORDER BY s.step", [run_id], tables=["checkpoints"]).to_pylist()
        return [Checkpoint(r["run_id"], r["step"], r["path"], r["uri"], r["metric_key"], r["metric_value"], r["mode"],
                           r["size"], r["sha256"], r["event_time"])
                for r in rows if include_pruned or not r["pruned"]]

    def load_checkpoint(self, run_id: str, step: int | str = "latest", *,
                        dst_path: str | os.PathLike | None = None) -> Any:
        """Load a checkpoint: ``step`` is a step number, ``"latest"`` or ``"best"``. An object saved by
        ``log_checkpoint`` comes back as that object; a stored file or folder as its local path."""
        import joblib

        live = self.list_checkpoints(run_id)
        if not live:
            raise NotFoundError(f"run {run_id} has no stored checkpoints; save them with lakeml.log_checkpoint()")
        if step == "latest":
            ck = live[-1]
        elif step == "best":
            mode = live[-1].mode or "min"
            ranked = RetentionPolicy(1, 1, mode).best(live)
            if not ranked:
                raise NotFoundError(f"no checkpoint of run {run_id} has a metric, so none is 'best'")
            ck = ranked[0]
        else:
            step = v.step_value(step, "checkpoint")
            match = [c for c in live if c.step == step]
            if not match:
                raise NotFoundError(f"run {run_id} has no stored checkpoint at step {step} (stored: "
                                    f"{', '.join(str(c.step) for c in live)})")
            ck = match[0]
        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="lakeml-ckpt-"))
        folder = Path(self.artifacts.download(self.artifact_uri(run_id), ck.path, dst))
        files = [p for p in folder.rglob("*") if p.is_file()]
        if len(files) == 1 and files[0].name == "checkpoint.joblib":
            obj = joblib.load(files[0])
            if dst_path is None:
                shutil.rmtree(dst, ignore_errors=True)
            return obj
        return files[0] if len(files) == 1 else folder
