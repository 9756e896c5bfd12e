"""Model registry methods of the client; the ledger, rules and flavors live in :mod:`lakeml.registry`.

Registry writes are synchronous compare-and-swap commits to ``registry_events`` (see
:mod:`lakeml.registry.ledger`); they return once the change is durable.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from lakeml import validation as v
from lakeml.client.checkpoints_api import CheckpointsMixin
from lakeml.client.ledger_api import LedgerMixin, _tags, _text
from lakeml.client.lineage_api import LineageMixin
from lakeml.client.models_io_api import ModelIOMixin
from lakeml.errors import InvalidInputError, NotFoundError
from lakeml.registry import changes, names
from lakeml.registry.gates import Gates
from lakeml.registry.mlmodel import MLMODEL
from lakeml.registry.records import ModelAlias, ModelVersion, RegisteredModel

__all__ = ["RegistryMixin", "VersionsMixin"]


class VersionsMixin:
    """Registered models, their versions, aliases and gates."""

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


class RegistryMixin(VersionsMixin, ModelIOMixin, CheckpointsMixin, LineageMixin, LedgerMixin):
    """Methods of :class:`~lakeml.client.lake.Lake` for the model registry, models and checkpoints."""
