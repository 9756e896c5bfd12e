"""``lake.registry``: registered models, versions, aliases, gates and the audit log, over the ledger.

Registry writes are synchronous compare-and-swap commits to ``registry_events`` (see
:mod:`lakeml.registry.ledger`); they return once the change is durable. Its parts hang off it:
``registry.models_io`` (log and load model folders), ``registry.deployments`` (deployments and
lineage) and ``registry.checkpoints`` (training checkpoints).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from lakeml import validation as v
from lakeml.clock import us_to_datetime
from lakeml.errors import InvalidInputError, NotFoundError
from lakeml.registry import changes, names
from lakeml.registry.args import tags_arg, text_arg
from lakeml.registry.checkpointing import Checkpoints
from lakeml.registry.deployments import Deployments
from lakeml.registry.gates import GateFacts, Gates
from lakeml.registry.mlmodel import MLMODEL, flavor_of
from lakeml.registry.model_io import ModelIO
from lakeml.registry.records import ModelAlias, ModelVersion, RegisteredModel, RegistryEvent

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.query.client import QueryClient
    from lakeml.registry.ledger import Ledger
    from lakeml.registry.state import RegistryState
    from lakeml.storage.artifacts import ArtifactStore
    from lakeml.storage.committer import Committer
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.tables import TableStore
    from lakeml.tracking.client import TrackingClient


class RegistryClient:
    """The model registry of one lake. The ledger is opened on first use."""

    def __init__(self, config: "LakeConfig", store: "TableStore", artifacts: "ArtifactStore",
                 tracking: "TrackingClient", query: "QueryClient", committer: "Committer", *,
                 clock: Callable[[], int], before_read: Callable[[], None]):
        self.config = config
        self.store = store
        self.artifacts = artifacts
        self.tracking = tracking
        self.clock = clock
        self.before_read = before_read
        self.query = query
        #: Who registry changes are recorded as; None means the OS user.
        self.actor: str | None = None
        self._ledger: "Ledger | None" = None
        self._lock = threading.Lock()
        #: model name -> lifecycle steps done in its projects (``Projects.steps_done``; set by ``Lake``)
        self.lifecycle_steps: Callable[[str], frozenset[str]] | None = None
        self.models_io = ModelIO(self, tracking, query, artifacts, config)
        self.deployments = Deployments(self, tracking, query)
        self.checkpoints = Checkpoints(tracking, query, artifacts, committer.lazy_buffer("checkpoints"), clock=clock,
                                       before_read=before_read)

    @property
    def ledger(self) -> "Ledger":
        """The registry ledger (``registry_events`` and its projections), opened on first use."""
        if self._ledger is None:
            from lakeml.registry.ledger import Ledger

            with self._lock:
                if self._ledger is None:
                    self._ledger = Ledger(self.store, clock=self.clock)
        return self._ledger

    # -- plumbing shared with the parts ----------------------------------------------------------
    def commit(self, fn: Callable[..., Any], **kw: Any) -> Any:
        """Apply the change ``fn(state, now=, actor=, **kw)`` to the ledger (compare-and-swap, retried)."""
        from lakeml.tracking.runinfo import current_user

        actor = self.actor or current_user()

        def plan(st: "RegistryState"):
            return fn(st, now=us_to_datetime(self.clock()), actor=actor, **kw)

        return self.ledger.commit(plan, actor=actor)

    def state(self) -> "RegistryState":
        """The registry's current state (after committing this process's pending writes)."""
        self.before_read()
        engine = self.query.engine
        if not engine.cached:  # a one-shot reader (the CLI's read commands): DuckDB reads the events
            from lakeml.registry.ledger import fold_events

            return fold_events(engine.arrow("SELECT * FROM lakeml.registry_events", tables=["registry_events"]))
        return self.ledger.state()

    @staticmethod
    def ref(name: str, version: Any = None) -> names.ModelRef:
        """A model reference from ``(name, version)`` or from one text such as ``"churn@champion"``."""
        if version is not None:
            if isinstance(version, str) and version.lower() == "latest":
                return names.ModelRef(names.model_name(name))
            return names.ModelRef(names.model_name(name), version=names.version(version))
        text = name[len("models:"):].lstrip("/") if isinstance(name, str) and name.startswith("models:") else name
        return names.parse_ref(text)

    def gate_facts(self) -> Callable[[ModelVersion], GateFacts]:
        """What the gates check about a version: its run's metrics and artifacts (read once per call)."""
        memo: dict[tuple[str, int], GateFacts] = {}

        def facts(mv: ModelVersion) -> GateFacts:
            key = (mv.model_name, mv.version)
            if key not in memo:
                steps = self.lifecycle_steps(mv.model_name) if self.lifecycle_steps is not None else None
                if mv.run_id is None:
                    memo[key] = GateFacts(steps_done=steps)
                else:
                    run = self.tracking.get_run(mv.run_id)
                    memo[key] = GateFacts(dict(run.metrics), frozenset(self.artifacts.walk(run.artifact_uri)),
                                          {}, mv.run_id, steps)
            return memo[key]

        return facts

    # -- models -------------------------------------------------------------------------------
    def create_model(self, name: str, *, description: str | None = None,
                     tags: Mapping[str, Any] | None = None) -> RegisteredModel:
        """Create a registered model (returns the existing one if ``name`` is taken)."""
        return self.commit(changes.create_model, name=names.model_name(name),
                           description=text_arg(description, "description"), tags=tags_arg(tags, "model"))

    def update_model(self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None,
                     delete_tags: Iterable[str] = ()) -> RegisteredModel:
        """Change a model's description or tags."""
        return self.commit(changes.update_model, name=names.model_name(name),
                           description=text_arg(description, "description"), set_tags=tags_arg(tags, "model"),
                           delete_tags=list(delete_tags))

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its latest version and aliases."""
        return self.state().model(names.model_name(name))

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        st = self.state()
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
        version of ``name``; creates the model on its first version. Version numbers are gap-free.

        The folder must hold a model saved by ``log_model`` (an MLmodel file); anything else is refused.
        """
        import yaml

        from lakeml.storage.artifacts import ArtifactStore, clean_artifact_path

        name = names.model_name(name)
        tags = tags_arg(tags, "version")
        description = text_arg(description, "description")
        if run_id is not None:
            root = self.tracking.artifact_uri(v.validate_run_id(run_id))  # NotFoundError for an unknown run
            path = clean_artifact_path(artifact_path)
            source_uri = f"{root}/{path}" if path else root
            store, rel = self.artifacts, path
        elif source_uri is not None:
            if not isinstance(source_uri, str) or not source_uri.strip():
                raise InvalidInputError(f"source_uri must be a folder path or URI, got {source_uri!r}")
            path = None
            store, root, rel = ArtifactStore(source_uri, self.config.properties), source_uri, ""
        else:
            raise InvalidInputError("register_model needs run_id= (and artifact_path=) or source_uri=")
        where = f"runs:/{run_id}/{path}" if run_id else source_uri
        files = list(store.walk(root, rel))
        if not files:
            raise NotFoundError(f"nothing is stored at {where}; log the model first with "
                                "lakeml.log_model(model, 'model') or pass the right artifact_path")
        mfile = f"{rel}/{MLMODEL}" if rel else MLMODEL
        if mfile not in files:
            raise InvalidInputError(f"{where} holds no model: there is no {MLMODEL} file in it. Register a folder "
                                    "saved by lakeml.log_model() (or log_model(..., registered_model_name=...))")
        meta: dict[str, Any] = yaml.safe_load(store.read_bytes(f"{root}/{mfile}")) or {}
        flavor = flavor_of(meta)  # lakeml's MLmodel names its flavor; one saved by MLflow lists its flavors
        if not flavor:
            raise InvalidInputError(f"the {MLMODEL} file at {where} names no flavor; save the model again with "
                                    "lakeml.log_model()")
        return self.commit(changes.register, name=name, source_uri=source_uri, run_id=run_id, artifact_path=path,
                           flavor=flavor, signature=meta.get("signature"),
                           requirements=list(meta.get("requirements") or []), description=description, tags=tags)

    def get_model_version(self, name: str, version: int | str | None = None) -> ModelVersion:
        """A version by number (``("churn", 3)``), or by reference: ``"churn@champion"``, ``"churn/3"``,
        ``"churn/latest"``, ``"models:/churn@champion"``."""
        return self.state().resolve(self.ref(name, version))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at."""
        return self.state().resolve(names.ModelRef(names.model_name(name), alias=names.alias(alias)))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first."""
        return self.state().list_versions(names.model_name(name))

    def registered_versions(self, name: str) -> list[ModelVersion]:
        """The versions of ``name``, or none if no such model is registered."""
        st = self.state()
        return st.list_versions(name) if name in st.models else []

    def search_model_versions(self, name: str | None = None, *, run_id: str | None = None,
                              tags: Mapping[str, str] | None = None) -> list[ModelVersion]:
        """Versions of one model (or all), optionally made by ``run_id`` or carrying ``tags``."""
        st = self.state()
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
        """Change a version's description or tags."""
        return self.commit(changes.update_version, name=names.model_name(name), version=names.version(version),
                           description=text_arg(description, "description"), set_tags=tags_arg(tags, "version"),
                           delete_tags=list(delete_tags))

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> ModelVersion:
        """Tag a version, e.g. ``("churn", 3, "approved_by", "alice")`` for an approver gate."""
        return self.update_model_version(name, version, tags={v.validate_key(key, "version tag"): value})

    def delete_model_version_tag(self, name: str, version: int, key: str) -> ModelVersion:
        """Remove a tag of a version."""
        return self.update_model_version(name, version, delete_tags=[key])

    # -- aliases ------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> ModelAlias:
        """Point ``alias`` at ``version`` (moving it from any other version), if the model's gates allow.

        Raises :class:`~lakeml.errors.GateError` listing each failed rule; the refusal is recorded.
        """
        return self.commit(changes.set_alias, name=names.model_name(name), alias=names.alias(alias),
                           version=names.version(version), facts=self.gate_facts())

    def delete_alias(self, name: str, alias: str) -> ModelAlias:
        """Remove ``alias`` from the model."""
        return self.commit(changes.delete_alias, name=names.model_name(name), alias=names.alias(alias))

    # -- gates --------------------------------------------------------------------------------
    def set_gates(self, name: str, *, min_metrics: Mapping[str, float] | None = None,
                  max_metrics: Mapping[str, float] | None = None, required_artifacts: Iterable[str] | None = None,
                  required_tags: Mapping[str, Any] | Iterable[str] | None = None,
                  aliases: Iterable[str] | None = None, environments: Iterable[str] | None = None,
                  lifecycle_steps: Iterable[str] | None = None) -> Gates:
        """Declare the rules a version of ``name`` must pass before it gets an alias or an environment.

        ``aliases`` / ``environments`` limit which promotions are guarded (default: all). Replaces
        the previous rules; ``set_gates(name)`` with no rules removes them. ``lifecycle_steps``
        (rule kind ``lifecycle_step_done``): BPMN task ids that must be done in a model project linking
        the model, e.g. ``["approval"]``.
        """
        gates = Gates.build(min_metrics=min_metrics, max_metrics=max_metrics, required_artifacts=required_artifacts,
                            required_tags=required_tags, aliases=aliases, environments=environments,
                            lifecycle_steps=lifecycle_steps)
        return self.commit(changes.set_gates, name=names.model_name(name), gates=gates)

    def get_gates(self, name: str) -> Gates | None:
        """The model's gates, or None."""
        raw = self.get_model(name).gates
        return Gates.from_dict(raw) if raw else None

    def check_gates(self, name: str, version: int, *, alias: str | None = None,
                    environment: str | None = None) -> list[str]:
        """Dry run: the rules ``version`` would fail for that promotion (nothing is recorded)."""
        st = self.state()
        mv = st.version(names.model_name(name), names.version(version))
        fails, _ = changes.gate_failures(st, mv, self.gate_facts(), alias=names.alias(alias) if alias else None,
                                         environment=names.environment(environment) if environment else None)
        return fails

    # -- audit log ------------------------------------------------------------------------------
    def registry_events(self, name: str | None = None) -> list[RegistryEvent]:
        """The audit log (of one model): every change and every refused promotion, oldest first."""
        if name is not None:
            self.get_model(name)
        return self.ledger.events(name)

    def sync_registry(self) -> dict[str, int]:
        """Catch the projection tables up with the ledger (done after every change; for recovery)."""
        return self.ledger.sync()
