"""The explicit client: a :class:`Lake` whose methods take a run id.

``Lake`` is a set of components, each built in ``__init__`` with what it needs:
``lake.tracking`` (runs and logging), ``lake.registry`` (models), ``lake.query`` (SQL and
searches), ``lake.maintenance`` (table health) and ``lake.artifacts`` (the artifact store).
Its MLflow-style verbs are one-line delegations to them. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from lakeml.clock import Clock, now_us
from lakeml.entities import DatasetInput, Experiment, Metric, Param, Run, RunStatus, RunTag
from lakeml.ids import DEFAULT_EXPERIMENT, experiment_id_for
from lakeml.lifecycle.client import Projects
from lakeml.monitoring.client import Monitoring
from lakeml.query.client import QueryClient
from lakeml.query.freshness import ReadYourWrites
from lakeml.registry.checkpointing import Checkpoints
from lakeml.registry.client import RegistryClient
from lakeml.registry.deployments import Deployments
from lakeml.registry.model_io import ModelIO
from lakeml.storage.artifacts import ArtifactStore
from lakeml.storage.committer import Committer
from lakeml.storage.config import LakeConfig, resolve
from lakeml.storage.health import Maintenance, committer_parts
from lakeml.storage.retry import with_storage_defaults
from lakeml.storage.tables import TableStore
from lakeml.tracking.client import TrackingClient
from lakeml.tracking.inputs import RunInputs

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import polars as pl
    import pyarrow as pa

    from lakeml.query.bi import BiExport
    from lakeml.registry.checkpoints import Checkpoint
    from lakeml.registry.gates import Gates
    from lakeml.registry.mlmodel import ModelInfo
    from lakeml.registry.records import (Deployment, ModelAlias, ModelLineage, ModelVersion, RegisteredModel,
                                         RegistryEvent, TrainedModel)
    from lakeml.storage.maintenance import MaintenanceReport, Progress
    from lakeml.storage.recovery import RecoveryReport

__all__ = ["DEFAULT_EXPERIMENT", "Lake", "connect", "experiment_id_for"]


def _doc(src: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a delegating verb the docstring of the component method it calls."""
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__doc__ = src.__doc__
        return fn
    return deco


class Lake:
    """A connection to one lake: its catalog, tables, committer, artifact store, and the components over them."""

    def __init__(self, config: LakeConfig, *, clock: Clock = now_us, commit_interval: float = 1.0,
                 commit_deadline: float = 120.0, max_buffer_rows: int = 500_000):
        self.config = config
        self.clock = clock
        self.store = TableStore(with_storage_defaults(config))  # + S3 retries and timeouts for pyiceberg
        spool, maintainer = committer_parts(config, self.store)  # crash-safe spool, auto maintenance
        self.committer = Committer(self.store, interval=commit_interval, deadline=commit_deadline,
                                   max_rows=max_buffer_rows, spool=spool, maintainer=maintainer)
        self.artifacts = ArtifactStore(config.artifact_root, config.properties, legacy_root=config.legacy_artifact_root)
        before_read = ReadYourWrites(self.committer)  # every read first commits this process's pending rows
        self.query = QueryClient(self.store, before_read)
        self.tracking = TrackingClient(config, self.store, self.committer, self.artifacts, self.query, clock=clock,
                                       before_read=before_read)
        self.registry = RegistryClient(config, self.store, self.artifacts, self.tracking, self.query,
                                       self.committer, clock=clock, before_read=before_read)
        self.maintenance = Maintenance(config, self.store, self.committer, clock=clock)  # recovers dead spools
        before_read.recover = self.maintenance.recover_for_read  # reads recover spools nobody commits
        self.projects = Projects(config, self.store, self.committer, self.artifacts, self.tracking, self.registry,
                                 self.query, clock=clock, before_read=before_read)  # model lifecycle (BPMN)
        self.registry.lifecycle_steps = self.projects.steps_done  # promotion gate rule lifecycle_step_done
        self.monitoring = Monitoring(self.committer, self.query, self.registry.deployments, self.tracking.inputs,
                                     clock=clock, before_read=before_read)

    def __repr__(self) -> str:
        return f"Lake(catalog={self.config.catalog_name!r}, namespace={self.config.namespace!r})"

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- lifecycle ----------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Commit everything logged so far; returns once it is in the Iceberg tables."""
        self.committer.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush and release the committer thread and the DuckDB connections."""
        try:
            self.committer.close(timeout)
        finally:
            self.query.close()

    def init(self) -> list[str]:
        """Create (or evolve) every lakeml table now; returns their identifiers."""
        return self.store.ensure_all()

    @property
    def registry_actor(self) -> str | None:
        """Who registry changes are recorded as (None: the OS user); the same as ``lake.registry.actor``."""
        return self.registry.actor

    @registry_actor.setter
    def registry_actor(self, actor: str | None) -> None:
        self.registry.actor = actor

    @property
    def engine(self):
        """The DuckDB engine used for reads (created on first use). Getting it first commits this
        process's pending rows, so queries on it see them (read-your-writes)."""
        self.query.before_read()
        return self.query.engine

    # -- experiments and runs (lake.tracking) ----------------------------------------------------
    @_doc(TrackingClient.get_or_create_experiment)
    def get_or_create_experiment(self, name: str = DEFAULT_EXPERIMENT, *, tags: Mapping[str, str] | None = None,
                                 artifact_location: str | None = None) -> str:
        return self.tracking.get_or_create_experiment(name, tags=tags, artifact_location=artifact_location)

    @_doc(TrackingClient.create_experiment)
    def create_experiment(self, name: str, *, tags: Mapping[str, str] | None = None,
                          artifact_location: str | None = None) -> str:
        return self.tracking.create_experiment(name, tags=tags, artifact_location=artifact_location)

    @_doc(TrackingClient.list_experiments)
    def list_experiments(self) -> list[Experiment]:
        return self.tracking.list_experiments()

    @_doc(TrackingClient.get_experiment_by_name)
    def get_experiment_by_name(self, name: str) -> Experiment:
        return self.tracking.get_experiment_by_name(name)

    @_doc(TrackingClient.create_run)
    def create_run(self, experiment: str = DEFAULT_EXPERIMENT, *, run_name: str | None = None,
                   tags: Mapping[str, Any] | None = None, parent_run_id: str | None = None,
                   start_time_ms: int | None = None) -> Run:
        return self.tracking.create_run(experiment, run_name=run_name, tags=tags, parent_run_id=parent_run_id,
                                        start_time_ms=start_time_ms)

    @_doc(TrackingClient.set_terminated)
    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *,
                       error: str | None = None, end_time_ms: int | None = None, wait: bool | None = None,
                       flush: bool | None = None) -> None:
        self.tracking.set_terminated(run_id, status, error=error, end_time_ms=end_time_ms, wait=wait, flush=flush)

    @_doc(TrackingClient.get_run)
    def get_run(self, run_id: str) -> Run:
        return self.tracking.get_run(run_id)

    # -- logging ------------------------------------------------------------------------------
    @_doc(TrackingClient.log_metric)
    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self.tracking.log_metric(run_id, key, value, step, timestamp)

    @_doc(TrackingClient.log_metrics)
    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0,
                    timestamp: int | None = None) -> None:
        self.tracking.log_metrics(run_id, metrics, step, timestamp)

    @_doc(TrackingClient.log_param)
    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.tracking.log_param(run_id, key, value)

    @_doc(TrackingClient.log_params)
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.tracking.log_params(run_id, params)

    @_doc(TrackingClient.set_tag)
    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.tracking.set_tag(run_id, key, value)

    @_doc(TrackingClient.set_tags)
    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.tracking.set_tags(run_id, tags)

    @_doc(TrackingClient.delete_tag)
    def delete_tag(self, run_id: str, key: str) -> None:
        self.tracking.delete_tag(run_id, key)

    @_doc(TrackingClient.log_batch)
    def log_batch(self, run_id: str, metrics: Iterable[Metric] | Any = (), params: Iterable[Param] = (),
                  tags: Iterable[RunTag] = ()) -> None:
        self.tracking.log_batch(run_id, metrics, params, tags)

    # -- inputs (lake.tracking.inputs) ---------------------------------------------------------
    @_doc(RunInputs.log_input)
    def log_input(self, run_id: str, *, table: str | None = None, path: str | os.PathLike | None = None,
                  role: str = "train", snapshot_id: int | None = None, name: str | None = None) -> DatasetInput:
        return self.tracking.inputs.log_input(run_id, table=table, path=path, role=role, snapshot_id=snapshot_id,
                                              name=name)

    @_doc(RunInputs.get_inputs)
    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        return self.tracking.inputs.get_inputs(run_id)

    @_doc(RunInputs.load_input)
    def load_input(self, run_id: str, table: str | None = None, *,
                   role: str | None = None) -> "pa.Table | Path | str":
        return self.tracking.inputs.load_input(run_id, table, role=role)

    # -- artifacts ----------------------------------------------------------------------------
    @_doc(TrackingClient.artifact_uri)
    def artifact_uri(self, run_id: str) -> str:
        return self.tracking.artifact_uri(run_id)

    @_doc(TrackingClient.log_artifact)
    def log_artifact(self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None) -> str:
        return self.tracking.log_artifact(run_id, local_path, artifact_path)

    @_doc(TrackingClient.log_artifacts)
    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[str]:
        return self.tracking.log_artifacts(run_id, local_dir, artifact_path)

    @_doc(TrackingClient.list_artifacts)
    def list_artifacts(self, run_id: str, path: str | None = None):
        return self.tracking.list_artifacts(run_id, path)

    @_doc(TrackingClient.download_artifacts)
    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | os.PathLike | None = None) -> str:
        return self.tracking.download_artifacts(run_id, path, dst_path)

    # -- queries (lake.query) ------------------------------------------------------------------
    @_doc(QueryClient.search_runs)
    def search_runs(self, experiment_names: str | list[str] | None = None, filter_string: str | None = None,
                    order_by: list[str] | None = None, max_results: int = 1000, offset: int = 0) -> "pl.DataFrame":
        return self.query.search_runs(experiment_names, filter_string, order_by, max_results, offset)

    @_doc(QueryClient.get_metric_history)
    def get_metric_history(self, run_id: str, key: str | None = None) -> "pl.DataFrame":
        return self.query.get_metric_history(run_id, key)

    @_doc(QueryClient.metric_histories)
    def metric_histories(self, run_ids: Iterable[str], key: str | None = None) -> "pl.DataFrame":
        return self.query.metric_histories(run_ids, key)

    @_doc(QueryClient.sql)
    def sql(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
            read_write: bool = False) -> "pl.DataFrame":
        return self.query.sql(query, as_of=as_of, params=params, read_write=read_write)

    @_doc(QueryClient.sql_arrow)
    def sql_arrow(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
                  read_write: bool = False) -> "pa.Table":
        return self.query.sql_arrow(query, as_of=as_of, params=params, read_write=read_write)

    @_doc(QueryClient.sql_tables)
    def sql_tables(self) -> list[str]:
        return self.query.sql_tables()

    @_doc(QueryClient.duckdb)
    def duckdb(self, *, read_write: bool = False) -> "duckdb.DuckDBPyConnection":
        return self.query.duckdb(read_write=read_write)

    @_doc(QueryClient.bi_export)
    def bi_export(self, path: str | os.PathLike, *, extension_directory: str | None = None,
                  overwrite: bool = False) -> BiExport:
        return self.query.bi_export(path, extension_directory=extension_directory, overwrite=overwrite)

    # -- registered models (lake.registry) -------------------------------------------------------
    @_doc(RegistryClient.create_model)
    def create_model(self, name: str, *, description: str | None = None,
                     tags: Mapping[str, Any] | None = None) -> RegisteredModel:
        return self.registry.create_model(name, description=description, tags=tags)

    @_doc(RegistryClient.update_model)
    def update_model(self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None,
                     delete_tags: Iterable[str] = ()) -> RegisteredModel:
        return self.registry.update_model(name, description=description, tags=tags, delete_tags=delete_tags)

    @_doc(RegistryClient.get_model)
    def get_model(self, name: str) -> RegisteredModel:
        return self.registry.get_model(name)

    @_doc(RegistryClient.list_models)
    def list_models(self) -> list[RegisteredModel]:
        return self.registry.list_models()

    @_doc(RegistryClient.search_models)
    def search_models(self, query: str | None = None, *,
                      tags: Mapping[str, str] | None = None) -> list[RegisteredModel]:
        return self.registry.search_models(query, tags=tags)

    @_doc(RegistryClient.register_model)
    def register_model(self, name: str, *, run_id: str | None = None, artifact_path: str = "model",
                       source_uri: str | None = None, description: str | None = None,
                       tags: Mapping[str, Any] | None = None) -> ModelVersion:
        return self.registry.register_model(name, run_id=run_id, artifact_path=artifact_path, source_uri=source_uri,
                                            description=description, tags=tags)

    @_doc(RegistryClient.get_model_version)
    def get_model_version(self, name: str, version: int | str | None = None) -> ModelVersion:
        return self.registry.get_model_version(name, version)

    @_doc(RegistryClient.get_model_version_by_alias)
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.registry.get_model_version_by_alias(name, alias)

    @_doc(RegistryClient.list_model_versions)
    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return self.registry.list_model_versions(name)

    @_doc(RegistryClient.search_model_versions)
    def search_model_versions(self, name: str | None = None, *, run_id: str | None = None,
                              tags: Mapping[str, str] | None = None) -> list[ModelVersion]:
        return self.registry.search_model_versions(name, run_id=run_id, tags=tags)

    @_doc(RegistryClient.update_model_version)
    def update_model_version(self, name: str, version: int, *, description: str | None = None,
                             tags: Mapping[str, Any] | None = None, delete_tags: Iterable[str] = ()) -> ModelVersion:
        return self.registry.update_model_version(name, version, description=description, tags=tags,
                                                  delete_tags=delete_tags)

    @_doc(RegistryClient.set_model_version_tag)
    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> ModelVersion:
        return self.registry.set_model_version_tag(name, version, key, value)

    @_doc(RegistryClient.delete_model_version_tag)
    def delete_model_version_tag(self, name: str, version: int, key: str) -> ModelVersion:
        return self.registry.delete_model_version_tag(name, version, key)

    @_doc(RegistryClient.set_alias)
    def set_alias(self, name: str, alias: str, version: int) -> ModelAlias:
        return self.registry.set_alias(name, alias, version)

    @_doc(RegistryClient.delete_alias)
    def delete_alias(self, name: str, alias: str) -> ModelAlias:
        return self.registry.delete_alias(name, alias)

    @_doc(RegistryClient.set_gates)
    def set_gates(self, name: str, *, min_metrics: Mapping[str, float] | None = None,
                  max_metrics: Mapping[str, float] | None = None, required_artifacts: Iterable[str] | None = None,
                  required_tags: Mapping[str, Any] | Iterable[str] | None = None,
                  aliases: Iterable[str] | None = None, environments: Iterable[str] | None = None,
                  lifecycle_steps: Iterable[str] | None = None) -> Gates:
        return self.registry.set_gates(name, min_metrics=min_metrics, max_metrics=max_metrics,
                                       required_artifacts=required_artifacts, required_tags=required_tags,
                                       aliases=aliases, environments=environments, lifecycle_steps=lifecycle_steps)

    @_doc(RegistryClient.get_gates)
    def get_gates(self, name: str) -> Gates | None:
        return self.registry.get_gates(name)

    @_doc(RegistryClient.check_gates)
    def check_gates(self, name: str, version: int, *, alias: str | None = None,
                    environment: str | None = None) -> list[str]:
        return self.registry.check_gates(name, version, alias=alias, environment=environment)

    @_doc(RegistryClient.registry_events)
    def registry_events(self, name: str | None = None) -> list[RegistryEvent]:
        return self.registry.registry_events(name)

    @_doc(RegistryClient.sync_registry)
    def sync_registry(self) -> dict[str, int]:
        return self.registry.sync_registry()

    # -- deployments and lineage (lake.registry.deployments) ---------------------------------------
    @_doc(Deployments.record_deployment)
    def record_deployment(self, name: str, version: int, *, environment: str, service: str,
                          service_version: str | None = None, replace: bool = True) -> Deployment:
        return self.registry.deployments.record_deployment(name, version, environment=environment, service=service,
                                                           service_version=service_version, replace=replace)

    @_doc(Deployments.retire_deployment)
    def retire_deployment(self, name: str, *, environment: str | None = None, service: str | None = None,
                          deployment_id: str | None = None, reason: str | None = None) -> list[Deployment]:
        return self.registry.deployments.retire_deployment(name, environment=environment, service=service,
                                                           deployment_id=deployment_id, reason=reason)

    @_doc(Deployments.list_deployments)
    def list_deployments(self, name: str | None = None, *, environment: str | None = None,
                         active_only: bool = True) -> list[Deployment]:
        return self.registry.deployments.list_deployments(name, environment=environment, active_only=active_only)

    @_doc(Deployments.model_lineage)
    def model_lineage(self, name: str, version: int | str | None = None) -> ModelLineage:
        return self.registry.deployments.model_lineage(name, version)

    @_doc(Deployments.models_trained_on)
    def models_trained_on(self, table: str, *, snapshot_id: int | None = None) -> list[TrainedModel]:
        return self.registry.deployments.models_trained_on(table, snapshot_id=snapshot_id)

    # -- models as artifacts (lake.registry.models_io) ----------------------------------------------
    @_doc(ModelIO.log_model)
    def log_model(self, run_id: str, model: Any, artifact_path: str = "model", *, flavor: str | None = None,
                  signature: Any = None, input_example: Any = None, pip_requirements: list[str] | None = None,
                  extra_pip_requirements: list[str] | None = None, code_paths: list[str] | None = None,
                  metadata: Mapping[str, Any] | None = None, registered_model_name: str | None = None) -> ModelInfo:
        return self.registry.models_io.log_model(
            run_id, model, artifact_path, flavor=flavor, signature=signature, input_example=input_example,
            pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements, code_paths=code_paths,
            metadata=metadata, registered_model_name=registered_model_name)

    @_doc(ModelIO.get_model_info)
    def get_model_info(self, uri: str) -> ModelInfo:
        return self.registry.models_io.get_model_info(uri)

    @_doc(ModelIO.load_model)
    def load_model(self, uri: str, *, dst_path: str | os.PathLike | None = None, trusted: bool = True) -> Any:
        return self.registry.models_io.load_model(uri, dst_path=dst_path, trusted=trusted)

    @_doc(ModelIO.register_best_model)
    def register_best_model(self, name: str, *, experiment: str | None = None, metric: str, mode: str = "max",
                            artifact_path: str = "model", alias: str | None = "champion",
                            filter_string: str | None = None) -> ModelVersion:
        return self.registry.models_io.register_best_model(name, experiment=experiment, metric=metric, mode=mode,
                                                           artifact_path=artifact_path, alias=alias,
                                                           filter_string=filter_string)

    # -- checkpoints (lake.registry.checkpoints) -------------------------------------------------
    @_doc(Checkpoints.log_checkpoint)
    def log_checkpoint(self, run_id: str, obj_or_path: Any, *, step: int,
                       metric: float | Mapping[str, float] | None = None, metric_key: str | None = None,
                       mode: str = "min", keep_last: int = 2, keep_best: int = 1) -> Checkpoint:
        return self.registry.checkpoints.log_checkpoint(run_id, obj_or_path, step=step, metric=metric,
                                                        metric_key=metric_key, mode=mode, keep_last=keep_last,
                                                        keep_best=keep_best)

    @_doc(Checkpoints.list_checkpoints)
    def list_checkpoints(self, run_id: str, *, include_pruned: bool = False) -> list[Checkpoint]:
        return self.registry.checkpoints.list_checkpoints(run_id, include_pruned=include_pruned)

    @_doc(Checkpoints.load_checkpoint)
    def load_checkpoint(self, run_id: str, step: int | str = "latest", *,
                        dst_path: str | os.PathLike | None = None) -> Any:
        return self.registry.checkpoints.load_checkpoint(run_id, step, dst_path=dst_path)

    # -- monitoring (lake.monitoring) --------------------------------------------------------------
    @_doc(Monitoring.log_feedback)
    def log_feedback(self, request_id: str, label: Any, *, row_index: int | None = None) -> None:
        self.monitoring.log_feedback(request_id, label, row_index=row_index)

    @_doc(Monitoring.log_feedbacks)
    def log_feedbacks(self, rows: Iterable[Any]) -> int:
        return self.monitoring.log_feedbacks(rows)

    # -- table health (lake.maintenance) ----------------------------------------------------------
    @_doc(Maintenance.sync)
    def sync(self) -> int:
        return self.maintenance.sync()

    @_doc(Maintenance.recover)
    def recover(self, *, timeout: float | None = None) -> RecoveryReport:
        return self.maintenance.recover(timeout=timeout)

    @_doc(Maintenance.maintain)
    def maintain(self, tables: str | Iterable[str] | None = None, *, dry_run: bool = False,
                 retain: str | int | float | timedelta | None = None,
                 older_than: str | int | float | timedelta = "1d", now: datetime | int | None = None,
                 compact: bool = True, expire: bool = True, orphans: bool = True,
                 progress: Progress | None = None) -> MaintenanceReport:
        return self.maintenance.maintain(tables, dry_run=dry_run, retain=retain, older_than=older_than, now=now,
                                         compact=compact, expire=expire, orphans=orphans, progress=progress)


def connect(catalog: str | None = None, *, warehouse: str | os.PathLike | None = None,
            namespace: str | None = None, commit_interval: float = 1.0, commit_deadline: float = 120.0,
            clock: Clock = now_us, **properties: str) -> Lake:
    """Open a lake. With no arguments: the embedded default (``./lakeml-warehouse``, or
    ``$LAKEML_WAREHOUSE``), or the pyiceberg catalog named by ``$LAKEML_CATALOG``.

    ``catalog`` names a pyiceberg catalog profile; extra keyword properties are pyiceberg
    catalog properties (use ``s3__endpoint=...`` or a dict with ``**{"s3.endpoint": ...}``).

    ``catalog`` may also be a server address (``"http://host:5000"``; or ``$LAKEML_TRACKING_URI`` when
    nothing else is given): then a :class:`~lakeml.remote.lake.RemoteLake` over ``lakeml server``.
    """
    from lakeml.remote import is_remote_uri

    if is_remote_uri(catalog) or (catalog is None and warehouse is None and set(properties) <= {"token"}
                                  and is_remote_uri(os.environ.get("LAKEML_TRACKING_URI"))
                                  and not os.environ.get("LAKEML_CATALOG")):
        from lakeml.remote import connect as remote_connect

        return remote_connect(catalog if is_remote_uri(catalog) else None, token=properties.get("token"))
    cfg = resolve(catalog, warehouse=warehouse, namespace=namespace, **properties)
    return Lake(cfg, clock=clock, commit_interval=commit_interval, commit_deadline=commit_deadline)
