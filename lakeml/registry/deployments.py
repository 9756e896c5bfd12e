"""``lake.registry.deployments``: where versions run, and lineage (version -> run -> inputs, and back)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeml import validation as v
from lakeml.errors import InvalidInputError
from lakeml.registry import changes, names
from lakeml.registry.args import text_arg
from lakeml.registry.records import Deployment, ModelLineage, ModelVersion, TrainedModel

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.query.client import QueryClient
    from lakeml.registry.client import RegistryClient
    from lakeml.tracking.client import TrackingClient


class Deployments:
    """Deployments of model versions and model lineage, recorded in the registry ledger."""

    def __init__(self, registry: "RegistryClient", tracking: "TrackingClient", query: "QueryClient"):
        self.registry = registry
        self.tracking = tracking
        self.query = query

    def record_deployment(self, name: str, version: int, *, environment: str, service: str,
                          service_version: str | None = None, replace: bool = True) -> Deployment:
        """Record that ``version`` now runs in ``environment`` inside ``service`` (``service_version``).

        With ``replace`` (default) the deployment it replaces in that environment and service is retired.
        The model's gates for ``environment`` apply (a refusal raises GateError and is recorded).
        """
        if service_version is not None:
            service_version = v.tag_value(service_version, "service_version")
        return self.registry.commit(
            changes.deploy, name=names.model_name(name), version=names.version(version),
            environment=names.environment(environment), service=names.environment(service, "service"),
            service_version=service_version, replace=bool(replace), facts=self.registry.gate_facts())

    def retire_deployment(self, name: str, *, environment: str | None = None, service: str | None = None,
                          deployment_id: str | None = None, reason: str | None = None) -> list[Deployment]:
        """Mark the matching active deployments of ``name`` as retired; returns them."""
        return self.registry.commit(changes.retire, name=names.model_name(name),
                                    environment=names.environment(environment) if environment else None,
                                    service=names.environment(service, "service") if service else None,
                                    deployment_id=deployment_id, reason=text_arg(reason, "reason"))

    def list_deployments(self, name: str | None = None, *, environment: str | None = None,
                         active_only: bool = True) -> list[Deployment]:
        """Deployments (of ``name``, in ``environment``): the active ones, or all with ``active_only=False``."""
        st = self.registry.state()
        if name is not None:
            st.model(names.model_name(name))
        if active_only:
            return st.active_deployments(name, environment=environment)
        return sorted((d for d in st.deployments.values() if (name is None or d.model_name == name)
                       and (environment is None or d.environment == environment)),
                      key=lambda d: (d.model_name, d.deployed_at or datetime.min))

    def model_lineage(self, name: str, version: int | str | None = None) -> ModelLineage:
        """Version -> run -> params, metrics, code version (git commit) and the exact input snapshots."""
        st = self.registry.state()
        mv = st.resolve(self.registry.ref(name, version))
        deps = st.active_deployments(mv.model_name, version=mv.version)
        base = dict(model_name=mv.model_name, version=mv.version, model_uri=mv.model_uri, source_uri=mv.source_uri,
                    flavor=mv.flavor, aliases=mv.aliases, deployments=deps, run_id=mv.run_id)
        if mv.run_id is None:
            return ModelLineage(**base)
        run = self.tracking.get_run(mv.run_id)
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
        self.query.before_read()
        sql = ("SELECT DISTINCT run_id, table_identifier, snapshot_id, role FROM lakeml.inputs "
               "WHERE kind = 'iceberg' AND (table_identifier = $1 OR name = $1)")
        args: list[Any] = [table]
        if snapshot_id is not None:
            sql += " AND snapshot_id = $2"
            args.append(snapshot_id)
        rows = self.query.engine.arrow(sql, args, tables=["inputs"]).to_pylist()
        if not rows and snapshot_id is None:
            self.tracking.inputs.load_table(table)  # NotFoundError for a table that does not exist at all
        st = self.registry.state()
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
