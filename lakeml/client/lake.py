"""The explicit client: a :class:`Lake` whose methods take a run id.

Writes go to in-memory buffers drained by a background :class:`Committer`;
reads flush first (read-your-writes) and then query DuckDB over the tables.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from lakeml import validation as v
from lakeml.clock import Clock, now_us, us_to_datetime
from lakeml.entities import DatasetInput, Experiment, Metric, Param, Run, RunStatus, RunTag
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError, StorageError
from lakeml.storage.artifacts import ArtifactStore, clean_artifact_path
from lakeml.storage.committer import Committer
from lakeml.storage.config import LakeConfig, resolve
from lakeml.storage.tables import TableStore
from lakeml.client import runinfo
from lakeml.client.columns import is_columnar, metric_table
from lakeml.client.health_api import HealthMixin
from lakeml.client.registry_api import RegistryMixin
from lakeml.client.sql_api import SqlMixin

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl
    import pyarrow as pa

DEFAULT_EXPERIMENT = "Default"


def experiment_id_for(name: str) -> str:
    """Experiment ids derive from names, so concurrent creators agree without a lookup."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


@dataclass
class _RunState:
    experiment_id: str
    experiment_name: str | None
    run_name: str | None
    parent_run_id: str | None
    start_us: int | None
    params: dict[str, str] = field(default_factory=dict)
    status: RunStatus = RunStatus.RUNNING


class Lake(SqlMixin, RegistryMixin, HealthMixin):
    """A connection to one lake: its catalog, tables, committer and artifact store."""

    def __init__(self, config: LakeConfig, *, clock: Clock = now_us, commit_interval: float = 1.0,
                 commit_deadline: float = 120.0, max_buffer_rows: int = 500_000):
        self.config = config
        self.clock = clock
        self.store = TableStore(self._storage_defaults(config))  # + S3 retries and timeouts for pyiceberg
        spool, maintainer = self._health_parts(config, self.store)  # crash-safe spool, auto maintenance
        self.committer = Committer(self.store, interval=commit_interval, deadline=commit_deadline,
                                   max_rows=max_buffer_rows, spool=spool, maintainer=maintainer)
        self.artifacts = ArtifactStore(config.artifact_root, config.properties)
        self._engine: Any = None
        self._runs: dict[str, _RunState] = {}
        self._experiments: dict[str, str] = {}
        self._ok_keys: set[str] = set()
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._buf = {t: self.committer.buffer(t) for t in
                     ("experiments", "runs", "params", "metrics", "tags", "artifacts", "inputs")}
        self._metric_add = self._buf["metrics"].add
        self._start_recovery()  # dead processes' spools, in the background

    def __repr__(self) -> str:
        return f"Lake(catalog={self.config.catalog_name!r}, namespace={self.config.namespace!r})"

    def __enter__(self) -> "Lake":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- lifecycle ----------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Commit everything logged so far; returns once it is in the Iceberg tables."""
        self.committer.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush and release the committer thread and the DuckDB connection."""
        try:
            self.committer.close(timeout)
        finally:
            for eng in (self._engine, getattr(self, "_sql_rw_engine", None)):
                if eng is not None:
                    eng.close()

    def init(self) -> list[str]:
        """Create (or evolve) every lakeml table now; returns their identifiers."""
        return self.store.ensure_all()

    @property
    def engine(self):
        """The DuckDB engine used for reads (created on first use)."""
        if self._engine is None:
            from lakeml.query.engine import DuckEngine

            self._engine = DuckEngine(self.store)
        return self._engine

    def _read_ready(self) -> None:
        if self.committer.pending_rows():
            self.flush()

    # -- experiments --------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str = DEFAULT_EXPERIMENT, *, tags: Mapping[str, str] | None = None,
                                 artifact_location: str | None = None) -> str:
        """The id of experiment ``name``, recording it on first use by this client."""
        v.validate_name(name, "experiment")
        with self._lock:
            eid = self._experiments.get(name)
            if eid is None:
                eid = experiment_id_for(name)
                loc = artifact_location or f"{self.config.artifact_root}/{eid}"
                tag_map = [(str(k), v.tag_value(val, str(k))) for k, val in (tags or {}).items()]
                self._buf["experiments"].add((eid, name, loc, self.clock(), tag_map))
                self._experiments[name] = eid
        return eid

    def create_experiment(self, name: str, *, tags: Mapping[str, str] | None = None,
                          artifact_location: str | None = None) -> str:
        """Create experiment ``name``; raises :class:`ConflictError` if it exists."""
        v.validate_name(name, "experiment")
        if self._find_experiment(name) is not None:
            raise ConflictError(f"experiment {name!r} already exists; use get_or_create_experiment() or "
                                "start_run(experiment=...) to log into it")
        return self.get_or_create_experiment(name, tags=tags, artifact_location=artifact_location)

    def list_experiments(self) -> list[Experiment]:
        from lakeml.query.runs import _as_dict, list_experiments

        self._read_ready()
        df = list_experiments(self.engine)
        return [Experiment(r["experiment_id"], r["name"], r["artifact_location"], r["created_at"],
                           _as_dict(r["tags"]))
                for r in df.iter_rows(named=True)]

    def _find_experiment(self, name: str) -> Experiment | None:
        for e in self.list_experiments():
            if e.name == name:
                return e
        return None

    def get_experiment_by_name(self, name: str) -> Experiment:
        exp = self._find_experiment(name)
        if exp is None:
            raise NotFoundError(f"no experiment named {name!r}; list them with 'lakeml experiments list'")
        return exp

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, experiment: str = DEFAULT_EXPERIMENT, *, run_name: str | None = None,
                   tags: Mapping[str, Any] | None = None, parent_run_id: str | None = None,
                   start_time_ms: int | None = None) -> Run:
        """Start a run (status RUNNING) and return it."""
        eid = self.get_or_create_experiment(experiment)
        if parent_run_id is not None:
            self._state(parent_run_id)
        run_id = uuid.uuid4().hex
        if run_name is not None:
            v.validate_name(run_name, "run")
        run_name = run_name or f"run-{run_id[:8]}"
        start = start_time_ms * 1000 if start_time_ms is not None else self.clock()
        state = _RunState(eid, experiment, run_name, parent_run_id, start)
        with self._lock:
            self._runs[run_id] = state
        self._event(run_id, state, RunStatus.RUNNING, None, None)
        if parent_run_id:
            self.set_tag(run_id, "lakeml.parentRunId", parent_run_id)
        if tags:
            self.set_tags(run_id, tags)
        return self._run_entity(run_id, state)

    def _event(self, run_id: str, st: _RunState, status: RunStatus, end_us: int | None, error: str | None) -> None:
        user, source, commit, host = self._process_facts()
        self._buf["runs"].add((run_id, st.experiment_id, self.clock(), next(self._seq), status.value, st.run_name,
                               st.parent_run_id, st.start_us, end_us, user, source, commit, error, host,
                               os.getpid(), st.experiment_name))

    def _process_facts(self) -> tuple:
        """User, entry point, git commit and host: read once per process, not per run event."""
        facts = getattr(self, "_facts", None)
        if facts is None or facts[0] != os.getpid():
            facts = self._facts = (os.getpid(), (runinfo.current_user(), runinfo.source(),
                                                 runinfo.git_commit(), runinfo.host()))
        return facts[1]

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *,
                       error: str | None = None, end_time_ms: int | None = None, flush: bool = True) -> None:
        """End a run as FINISHED, FAILED or KILLED (``error`` keeps an exception message)."""
        st = self._state(run_id)
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidInputError(f"unknown run status {status!r}; use FINISHED, FAILED or KILLED") from None
        end = end_time_ms * 1000 if end_time_ms is not None else self.clock()
        if error is not None and len(error) > v.MAX_TAG_VALUE_LENGTH:
            error = error[: v.MAX_TAG_VALUE_LENGTH - 3] + "..."
        st.status = status
        self._event(run_id, st, status, end, error)
        if flush:
            self.flush()

    def _state(self, run_id: str) -> _RunState:
        st = self._runs.get(run_id)
        if st is not None:
            return st
        v.validate_run_id(run_id)
        run = self.get_run(run_id)
        st = _RunState(run.experiment_id, run.experiment_name, run.run_name, run.parent_run_id,
                       int(run.start_time.timestamp() * 1e6) if run.start_time else None, dict(run.params),
                       run.status)
        with self._lock:
            return self._runs.setdefault(run_id, st)

    # -- logging ------------------------------------------------------------------------------
    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Buffer one metric point (no I/O). NaN and +/-inf are stored as given."""
        if run_id not in self._runs:
            self._state(run_id)
        if type(key) is not str or key not in self._ok_keys:  # (an unhashable key must reach validation)
            v.validate_key(key, "metric")
            self._ok_keys.add(key)
        if type(value) is not float:
            value = v.metric_value(value, key)
        if type(step) is not int or not -9223372036854775808 <= step <= 9223372036854775807:
            step = v.step_value(step, key)
        ts = self.clock() if timestamp is None else v.timestamp_ms(timestamp, key) * 1000
        self._metric_add((run_id, key, value, step, ts))

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0,
                    timestamp: int | None = None) -> None:
        ts = timestamp if timestamp is not None else self.clock() // 1000
        for k, val in metrics.items():
            self.log_metric(run_id, k, val, step, ts)

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Record a hyperparameter. Write-once: the same value again is fine, another is a ConflictError."""
        self.log_batch(run_id, params=[Param(key, value)])

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=[Param(k, val) for k, val in params.items()])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags=[RunTag(key, value)])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=[RunTag(k, val) for k, val in tags.items()])

    def delete_tag(self, run_id: str, key: str) -> None:
        self._state(run_id)
        self._buf["tags"].add((run_id, v.validate_key(key, "tag"), None, self.clock(), True))

    def log_batch(self, run_id: str, metrics: Iterable[Metric] | Any = (), params: Iterable[Param] = (),
                  tags: Iterable[RunTag] = ()) -> None:
        """The one write path for params, tags and metric lists. Validates everything before buffering.

        ``metrics`` may also be columnar (the fast path for whole series): a dict of columns
        ``{"key": "loss", "value": values, "step": steps}`` or a pyarrow/polars/pandas table with
        columns key, value, step and timestamp (ms); see :mod:`lakeml.client.columns`.
        """
        st = self._state(run_id)
        now = self.clock()
        m_table = None
        if is_columnar(metrics):
            m_table = metric_table(run_id, metrics, now, self.store.contracts["metrics"].arrow_schema())
            metrics = ()
        p_rows, t_rows, m_rows = [], [], []
        new_params: dict[str, str] = {}
        for p in params:
            key = v.validate_key(p.key, "param")
            val = v.param_value(p.value, key)
            old = st.params.get(key, new_params.get(key))
            if old is not None and old != val:
                raise ConflictError(
                    f"param {key!r} of run {run_id} is already {old!r}; params are write-once, so {val!r} was "
                    "refused. Log it under a new key, or start a new run for the new value.")
            if old is None:
                new_params[key] = val
                p_rows.append((run_id, key, val, now))
        for t in tags:
            key = v.validate_key(t.key, "tag")
            t_rows.append((run_id, key, v.tag_value(t.value, key), now, False))
        for m in metrics:
            key = v.validate_key(m.key, "metric")
            ts = now if m.timestamp is None else v.timestamp_ms(m.timestamp, key) * 1000
            m_rows.append((run_id, key, v.metric_value(m.value, key), v.step_value(m.step, key), ts))
        with self._lock:
            st.params.update(new_params)
        if p_rows:
            self._buf["params"].extend(p_rows)
        if t_rows:
            self._buf["tags"].extend(t_rows)
        if m_rows:
            self._buf["metrics"].extend(m_rows)
        if m_table is not None and m_table.num_rows:
            self._buf["metrics"].add_arrow(m_table)

    # -- lineage ------------------------------------------------------------------------------
    def log_input(self, run_id: str, *, table: str | None = None, path: str | os.PathLike | None = None,
                  role: str = "train", snapshot_id: int | None = None, name: str | None = None) -> DatasetInput:
        """Record what the run read: an Iceberg table (its current or given snapshot) or a file (its digest)."""
        self._state(run_id)
        role = v.validate_key(role, "input role")
        if (table is None) == (path is None):
            raise InvalidInputError("log_input needs exactly one of table='namespace.table' or path='file'")
        if table is not None:
            di = self._iceberg_input(table, role, snapshot_id, name)
        else:
            di = self._file_input(path, role, name)
        self._buf["inputs"].add((run_id, di.role, di.kind, di.name, di.table, di.snapshot_id, di.schema_id,
                                 di.uri, di.digest, di.catalog, self.clock()))
        return di

    def _load_foreign_table(self, table: str):
        from pyiceberg.exceptions import NoSuchTableError

        if not isinstance(table, str) or "." not in table:
            raise InvalidInputError(f"table {table!r} must be an identifier 'namespace.table'")
        try:
            return self.store.catalog.load_table(table)
        except NoSuchTableError:
            raise NotFoundError(f"table {table!r} does not exist in catalog {self.config.catalog_name!r}; "
                                "check the name with 'lakeml sql \"SHOW ALL TABLES\"'") from None

    def _iceberg_input(self, table: str, role: str, snapshot_id: int | None, name: str | None) -> DatasetInput:
        tbl = self._load_foreign_table(table)
        snap = tbl.snapshot_by_id(snapshot_id) if snapshot_id is not None else tbl.current_snapshot()
        if snap is None:
            what = f"snapshot {snapshot_id}" if snapshot_id is not None else "any snapshot (it is empty)"
            raise NotFoundError(f"table {table!r} has no {what}; log the input after the data is written")
        schema_id = snap.schema_id if snap.schema_id is not None else tbl.schema().schema_id
        return DatasetInput("iceberg", name or table, role, table, snap.snapshot_id, schema_id,
                            tbl.location(), None, self.config.catalog_name)

    def _file_input(self, path: str | os.PathLike, role: str, name: str | None) -> DatasetInput:
        from lakeml.storage.objectstore import filesystem

        text = str(path)
        uri = text if "://" in text else Path(text).resolve().as_uri()
        fs, fpath = filesystem(uri, self.config.properties)
        digest = hashlib.sha256()
        try:
            with fs.open_input_stream(fpath) as f:
                while chunk := f.read(8 << 20):
                    digest.update(chunk)
        except FileNotFoundError:
            raise NotFoundError(f"input file {text!r} does not exist") from None
        except OSError as e:
            raise StorageError(f"could not read input file {text!r}: {e}") from e
        return DatasetInput("file", name or uri, role, None, None, None, uri, f"sha256:{digest.hexdigest()}")

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        return list(self.get_run(run_id).inputs)

    def load_input(self, run_id: str, table: str | None = None, *,
                   role: str | None = None) -> "pa.Table | Path | str":
        """Load exactly the data the run saw: the logged snapshot of an Iceberg input (as Arrow),
        or, after checking its digest, a file input's local path (its URI if it is in object storage)."""
        inputs = [i for i in self.get_inputs(run_id)
                  if (table is None or table in (i.table, i.name)) and (role is None or i.role == role)]
        if not inputs:
            raise NotFoundError(f"run {run_id} logged no input matching table={table!r} role={role!r}")
        if len(inputs) > 1:
            names = ", ".join(f"{i.name} ({i.role})" for i in inputs)
            raise InvalidInputError(f"run {run_id} has several inputs ({names}); pass table= or role=")
        di = inputs[0]
        if di.kind == "iceberg":
            tbl = self._load_foreign_table(di.table)
            if tbl.snapshot_by_id(di.snapshot_id) is None:
                raise NotFoundError(f"snapshot {di.snapshot_id} of {di.table} has been expired; the exact data "
                                    "of this run is gone (raise the table's snapshot retention)")
            return tbl.scan(snapshot_id=di.snapshot_id).to_arrow()
        fresh = self._file_input(di.uri, di.role, di.name)
        if fresh.digest != di.digest:
            raise ConflictError(f"file {di.uri} changed since run {run_id} read it ({di.digest} -> {fresh.digest})")
        if di.uri.startswith("file://"):
            from urllib.parse import unquote, urlparse

            return Path(unquote(urlparse(di.uri).path))
        return di.uri  # an object-store URI: verified, read it with your own client

    # -- artifacts ----------------------------------------------------------------------------
    def artifact_uri(self, run_id: str) -> str:
        return self.artifacts.run_uri(self._state(run_id).experiment_id, run_id)

    def log_artifact(self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None) -> str:
        """Store one file under the run, at ``artifact_path/<file name>``; returns its run-relative path."""
        src = Path(local_path)
        if src.is_dir():
            raise InvalidInputError(f"{str(src)!r} is a folder; use log_artifacts() for folders")
        prefix = clean_artifact_path(artifact_path)
        rel = f"{prefix}/{src.name}" if prefix else src.name
        obj = self.artifacts.put_file(src, self.artifact_uri(run_id), rel)
        self._record_artifacts(run_id, [obj])
        return obj.path

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[str]:
        """Store every file below ``local_dir`` under the run at ``artifact_path``."""
        objs = self.artifacts.put_dir(local_dir, self.artifact_uri(run_id), artifact_path or "")
        self._record_artifacts(run_id, objs)
        return [o.path for o in objs]

    def _record_artifacts(self, run_id: str, objs: list) -> None:
        now = self.clock()
        self._buf["artifacts"].extend([(run_id, o.path, o.uri, o.size, o.sha256, now) for o in objs])

    def list_artifacts(self, run_id: str, path: str | None = None):
        return self.artifacts.list(self.artifact_uri(run_id), path or "")

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | os.PathLike | None = None) -> str:
        """Download a file or folder of the run's artifacts; returns the local path."""
        import tempfile

        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="lakeml-"))
        return str(self.artifacts.download(self.artifact_uri(run_id), path, dst))

    # -- reads --------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """The run with its params, latest metrics, tags and inputs."""
        from lakeml.query.runs import run_details, run_events

        v.validate_run_id(run_id)
        self._read_ready()
        ev = run_events(self.engine, run_id)
        if ev.height == 0:
            raise NotFoundError(f"run {run_id} does not exist in {self.config.catalog_name}."
                                f"{self.config.namespace}; find run ids with 'lakeml runs list'")
        r = ev.row(0, named=True)
        d = run_details(self.engine, run_id)
        inputs = [DatasetInput(kind, name, role, t, snap, sch, uri, dig, cat)
                  for role, kind, name, t, snap, sch, uri, dig, cat in d["inputs"]]
        return Run(run_id=run_id, experiment_id=r["experiment_id"],
                   experiment_name=r.get("exp_name") or r.get("experiment_name"), run_name=r["run_name"],
                   status=RunStatus(r["status"]), start_time=r["start_time"], end_time=r["end_time"],
                   parent_run_id=r["parent_run_id"], user=r["user"], source=r["source"], git_commit=r["git_commit"],
                   error=r["error"], artifact_uri=self.artifacts.run_uri(r["experiment_id"], run_id),
                   params=d["params"], metrics=d["metrics"], tags=d["tags"], inputs=inputs)

    def _run_entity(self, run_id: str, st: _RunState) -> Run:
        return Run(run_id=run_id, experiment_id=st.experiment_id, experiment_name=st.experiment_name,
                   run_name=st.run_name, status=st.status, start_time=us_to_datetime(st.start_us), end_time=None,
                   parent_run_id=st.parent_run_id, artifact_uri=self.artifacts.run_uri(st.experiment_id, run_id),
                   params=dict(st.params))

    def search_runs(self, experiment_names: str | list[str] | None = None, filter_string: str | None = None,
                    order_by: list[str] | None = None, max_results: int = 1000, offset: int = 0) -> "pl.DataFrame":
        """Runs matching an MLflow-style filter, as a polars DataFrame with params.*, metrics.*, tags.* columns.

        Page with ``max_results`` and ``offset``.
        """
        from lakeml.query.runs import search_runs

        if max_results < 1 or offset < 0:
            raise InvalidInputError("max_results must be >= 1 and offset >= 0")
        if isinstance(experiment_names, str):
            experiment_names = [experiment_names]
        ids = [experiment_id_for(v.validate_name(n)) for n in experiment_names] if experiment_names else None
        self._read_ready()
        return search_runs(self.engine, experiment_ids=ids, filter_string=filter_string, order_by=order_by,
                           max_results=max_results, offset=offset)

    def get_metric_history(self, run_id: str, key: str | None = None) -> "pl.DataFrame":
        """Every point of metric ``key`` (or all metrics) of a run, ordered by step: key, step, value, timestamp."""
        from lakeml.query.runs import metric_history

        v.validate_run_id(run_id)
        if key is not None:
            v.validate_key(key, "metric")
        self._read_ready()
        return metric_history(self.engine, run_id, key)


def connect(catalog: str | None = None, *, warehouse: str | os.PathLike | None = None,
            namespace: str | None = None, commit_interval: float = 1.0, commit_deadline: float = 120.0,
            clock: Clock = now_us, **properties: str) -> Lake:
    """Open a lake. With no arguments: the embedded default (``./lakeml-warehouse``, or
    ``$LAKEML_WAREHOUSE``), or the pyiceberg catalog named by ``$LAKEML_CATALOG``.

    ``catalog`` names a pyiceberg catalog profile; extra keyword properties are pyiceberg
    catalog properties (use ``s3__endpoint=...`` or a dict with ``**{"s3.endpoint": ...}``).
    """
    cfg = resolve(catalog, warehouse=warehouse, namespace=namespace, **properties)
    return Lake(cfg, clock=clock, commit_interval=commit_interval, commit_deadline=commit_deadline)
