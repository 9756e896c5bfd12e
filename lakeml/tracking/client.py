"""``lake.tracking``: experiments, runs, the logging verbs and run artifacts.

Writes go to the committer's in-memory buffers (no I/O); a run's end hands its rows to the
committer (the fsynced spool) and returns, unless the caller asks to wait for Iceberg.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from lakeml import validation as v
from lakeml.clock import us_to_datetime
from lakeml.identity import acting_user, run_source
from lakeml.entities import DatasetInput, Experiment, Metric, Param, Run, RunStatus, RunTag
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError
from lakeml.ids import DEFAULT_EXPERIMENT, experiment_id_for
from lakeml.storage.artifacts import clean_artifact_path
from lakeml.tracking.columns import is_columnar, metric_table
from lakeml.tracking.inputs import RunInputs
from lakeml.tracking.runs import ProcessFacts, RunState

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.query.client import QueryClient
    from lakeml.storage.artifacts import ArtifactStore
    from lakeml.storage.committer import Committer
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.tables import TableStore

#: Set to 1 to make every run end wait until its rows are committed to Iceberg (storage-confirmed).
SYNC_END_ENV = "LAKEML_SYNC_END"
TABLES = ("experiments", "runs", "params", "metrics", "tags", "artifacts", "inputs")
_I64 = (-(2**63), 2**63 - 1)


def sync_end_default() -> bool:
    """True when ``$LAKEML_SYNC_END`` asks run ends to wait for Iceberg."""
    return os.environ.get(SYNC_END_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class _Buffers(dict):
    """The committer's row buffer of each table, asked for on first use."""

    def __init__(self, committer: "Committer"):
        super().__init__()
        self._committer = committer

    def __missing__(self, table: str) -> Any:
        buf = self[table] = self._committer.buffer(table)
        return buf


class TrackingClient:
    """Experiments, runs and their params, metrics, tags, artifacts and inputs, by explicit run id."""

    def __init__(self, config: "LakeConfig", store: "TableStore", committer: "Committer",
                 artifacts: "ArtifactStore", query: "QueryClient", *, clock: Callable[[], int],
                 before_read: Callable[[], None]):
        self.config = config
        self.store = store
        self.committer = committer
        self.artifacts = artifacts
        self.query = query
        self.clock = clock
        self.before_read = before_read
        self._runs: dict[str, RunState] = {}
        self._experiments: dict[str, str] = {}
        self._ok_keys: set[str] = set()
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._facts = ProcessFacts()
        self.unknown_run_grace = 0.0  # seconds to wait for an unknown run id to appear (lakeml server sets it)
        # Buffers (and the committer's thread) come on first write: a reader starts neither.
        self._buf = _Buffers(committer)
        self.inputs = RunInputs(config, store, committer.lazy_buffer("inputs"), self.run_state, self.get_run,
                                clock=clock)

    def __getattr__(self, name: str) -> Any:
        if name == "_metric_add":  # bound on first use (see __init__)
            add = self._metric_add = self._buf["metrics"].add
            return add
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
        """Every experiment, oldest first."""
        from lakeml.query.runs import _as_dict, experiment_rows

        self.before_read()
        return [Experiment(eid, name, loc, created, _as_dict(tags))
                for eid, name, loc, created, tags in experiment_rows(self.query.engine)]

    def _find_experiment(self, name: str) -> Experiment | None:
        return next((e for e in self.list_experiments() if e.name == name), None)

    def get_experiment_by_name(self, name: str) -> Experiment:
        """The experiment named ``name``; :class:`NotFoundError` if there is none."""
        exp = self._find_experiment(name)
        if exp is None:
            raise NotFoundError(f"no experiment named {name!r}; list them with 'lakeml experiments list'")
        return exp

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, experiment: str = DEFAULT_EXPERIMENT, *, run_name: str | None = None,
                   tags: Mapping[str, Any] | None = None, parent_run_id: str | None = None,
                   start_time_ms: int | None = None, run_id: str | None = None) -> Run:
        """Start a run (status RUNNING) and return it. ``run_id``: chosen by the caller (a remote client
        that logs before the server answers); default a new random id."""
        eid = self.get_or_create_experiment(experiment)
        if parent_run_id is not None:
            self.run_state(parent_run_id)
        if run_id is not None:
            v.validate_run_id(run_id)
        run_id = run_id or uuid.uuid4().hex
        if run_name is not None:
            v.validate_name(run_name, "run")
        run_name = run_name or f"run-{run_id[:8]}"
        start = start_time_ms * 1000 if start_time_ms is not None else self.clock()
        state = RunState(eid, experiment, run_name, parent_run_id, start)
        if acting_user() is not None:
            state.source, state.git_commit = run_source()
        with self._lock:
            self._runs[run_id] = state
        self._event(run_id, state, RunStatus.RUNNING, None, None)
        if parent_run_id:
            self.set_tag(run_id, "lakeml.parentRunId", parent_run_id)
        if tags:
            self.set_tags(run_id, tags)
        return self._run_entity(run_id, state)

    def _event(self, run_id: str, st: RunState, status: RunStatus, end_us: int | None, error: str | None) -> None:
        user, source, commit, host = self._facts.get()
        if acting_user() is not None:  # a server request: the run's own source, from its creation
            source, commit = st.source, st.git_commit
        self._buf["runs"].add((run_id, st.experiment_id, self.clock(), next(self._seq), status.value, st.run_name,
                               st.parent_run_id, st.start_us, end_us, user, source, commit, error, host,
                               os.getpid(), st.experiment_name))

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *,
                       error: str | None = None, end_time_ms: int | None = None, wait: bool | None = None,
                       flush: bool | None = None) -> None:
        """End a run as FINISHED, FAILED or KILLED (``error`` keeps an exception message).

        Returns once the run's rows are handed to the committer (in the fsynced spool when it is
        on), without waiting for Iceberg; reads in this process still see them. ``wait=True`` (or
        ``$LAKEML_SYNC_END=1``) returns only once they are committed. ``flush`` is the old name of
        ``wait``.
        """
        st = self.run_state(run_id)
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidInputError(f"unknown run status {status!r}; use FINISHED, FAILED or KILLED") from None
        end = end_time_ms * 1000 if end_time_ms is not None else self.clock()
        if error is not None:
            error = v.utf8_escaped(str(error))  # a file name in an exception message may not be UTF-8
        if error is not None and len(error) > v.MAX_TAG_VALUE_LENGTH:
            error = error[: v.MAX_TAG_VALUE_LENGTH - 3] + "..."
        st.status = status
        self._event(run_id, st, status, end, error)
        wait = wait if wait is not None else flush
        if wait or (wait is None and sync_end_default()):
            self.committer.flush()
        else:
            self.committer.handoff()

    def run_state(self, run_id: str) -> RunState:
        """What this client knows of ``run_id`` (read from the tables the first time); NotFoundError if unknown."""
        st = self._runs.get(run_id)
        if st is not None:
            return st
        v.validate_run_id(run_id)
        run = self._get_run_patiently(run_id)
        st = RunState(run.experiment_id, run.experiment_name, run.run_name, run.parent_run_id,
                      int(run.start_time.timestamp() * 1e6) if run.start_time else None, dict(run.params),
                      run.status, source=run.source, git_commit=run.git_commit)
        with self._lock:
            return self._runs.setdefault(run_id, st)

    def _get_run_patiently(self, run_id: str) -> Run:
        """``get_run``, retried for ``unknown_run_grace`` seconds while the run is not found: a server
        replica sees a run created through another replica only once that replica has committed it."""
        deadline = time.monotonic() + self.unknown_run_grace
        while True:
            try:
                return self.get_run(run_id)
            except NotFoundError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    # -- logging ------------------------------------------------------------------------------
    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Buffer one metric point (no I/O). NaN and +/-inf are stored as given."""
        if run_id not in self._runs:
            self.run_state(run_id)
        # The hot path: a known key, a float and an int64 step skip the checks of metric_row.
        if (type(key) is not str or key not in self._ok_keys or type(value) is not float or type(step) is not int
                or not -9223372036854775808 <= step <= 9223372036854775807 or timestamp is not None):
            self._metric_add(self.metric_row(run_id, key, value, step, timestamp))
            return
        self._metric_add((run_id, key, value, step, self.clock()))

    def metric_row(self, run_id: str, key: Any, value: Any, step: Any, timestamp: Any,
                   now: int | None = None) -> tuple:
        """One validated ``metrics`` row: every metric point is checked here, with lakeml.validation's rules."""
        if type(key) is not str or key not in self._ok_keys:  # (an unhashable key must reach validation)
            v.validate_key(key, "metric")
            self._ok_keys.add(key)
        value = value if type(value) is float else v.metric_value(value, key)
        step = step if type(step) is int and _I64[0] <= step <= _I64[1] else v.step_value(step, key)
        if timestamp is not None:
            ts = v.timestamp_ms(timestamp, key) * 1000
        else:
            ts = self.clock() if now is None else now
        return (run_id, key, value, step, ts)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0,
                    timestamp: int | None = None) -> None:
        """Buffer several metrics at one step."""
        if run_id not in self._runs:
            self.run_state(run_id)
        ts = timestamp if timestamp is not None else self.clock() // 1000
        ts_us = v.timestamp_ms(ts, next(iter(metrics), "")) * 1000  # checked once for all of them
        add, ok = self._metric_add, self._ok_keys
        fast_step = type(step) is int and _I64[0] <= step <= _I64[1]
        for k, val in metrics.items():
            if fast_step and type(k) is str and k in ok and type(val) is float:
                add((run_id, k, val, step, ts_us))
            else:
                add(self.metric_row(run_id, k, val, step, None, now=ts_us))

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Record a hyperparameter. Write-once: the same value again is fine, another is a ConflictError."""
        self.log_batch(run_id, params=[Param(key, value)])

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record several hyperparameters (write-once, like :meth:`log_param`)."""
        self.log_batch(run_id, params=[Param(k, val) for k, val in params.items()])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set a tag on the run (the latest value wins)."""
        self.log_batch(run_id, tags=[RunTag(key, value)])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set several tags on the run."""
        self.log_batch(run_id, tags=[RunTag(k, val) for k, val in tags.items()])

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a tag of the run (recorded as a deletion event)."""
        self.run_state(run_id)
        self._buf["tags"].add((run_id, v.validate_key(key, "tag"), None, self.clock(), True))

    def log_batch(self, run_id: str, metrics: Iterable[Metric] | Any = (), params: Iterable[Param] = (),
                  tags: Iterable[RunTag] = ()) -> None:
        """The one write path for params, tags and metric lists. Validates everything before buffering.

        ``metrics`` may also be columnar (the fast path for whole series): a dict of columns
        ``{"key": "loss", "value": values, "step": steps}`` or a pyarrow/polars/pandas table with
        columns key, value, step and timestamp (ms); see :mod:`lakeml.tracking.columns`.
        """
        st = self.run_state(run_id)
        now = self.clock()
        m_table = None
        if is_columnar(metrics):
            m_table = metric_table(run_id, metrics, now, self.store.contracts["metrics"].arrow_schema())
            metrics = ()
        p_rows, t_rows = [], []
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
        m_rows = [self.metric_row(run_id, m.key, m.value, m.step, m.timestamp, now) for m in metrics]
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

    # -- artifacts ----------------------------------------------------------------------------
    def artifact_uri(self, run_id: str) -> str:
        """Where the run's artifacts are stored."""
        return self.artifacts.run_uri(self.run_state(run_id).experiment_id, run_id)

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
        """Store every file below ``local_dir`` under the run at ``artifact_path``; returns the stored paths.

        Symlinks to files outside ``local_dir`` are skipped, with a logged warning; the returned
        list names them in ``.skipped_links``.
        """
        from lakeml.storage.artifacts import StoredFolder

        objs = self.artifacts.put_dir(local_dir, self.artifact_uri(run_id), artifact_path or "")
        self._record_artifacts(run_id, objs)
        paths = StoredFolder(o.path for o in objs)
        paths.skipped_links = objs.skipped_links
        return paths

    def _record_artifacts(self, run_id: str, objs: list) -> None:
        now = self.clock()
        self._buf["artifacts"].extend([(run_id, o.path, o.uri, o.size, o.sha256, now) for o in objs])

    def list_artifacts(self, run_id: str, path: str | None = None):
        """The run's artifacts (below ``path``)."""
        return self.artifacts.list(self.artifact_uri(run_id), path or "")

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | os.PathLike | None = None) -> str:
        """Download a file or folder of the run's artifacts; returns the local path."""
        import tempfile

        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="lakeml-"))
        return str(self.artifacts.download(self.artifact_uri(run_id), path, dst))

    # -- reads --------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """The run with its params, latest metrics, tags and inputs."""
        from lakeml.query.runs import run_details, run_event_row

        v.validate_run_id(run_id)
        self.before_read()
        engine = self.query.engine
        r = run_event_row(engine, run_id)
        if r is None:
            raise NotFoundError(f"run {run_id} does not exist in {self.config.catalog_name}."
                                f"{self.config.namespace}; find run ids with 'lakeml runs list'")
        d = run_details(engine, run_id)
        inputs = [DatasetInput(kind, name, role, t, snap, sch, uri, dig, cat)
                  for role, kind, name, t, snap, sch, uri, dig, cat in d["inputs"]]
        return Run(run_id=run_id, experiment_id=r["experiment_id"],
                   experiment_name=r.get("exp_name") or r.get("experiment_name"), run_name=r["run_name"],
                   status=RunStatus(r["status"]), start_time=r["start_time"], end_time=r["end_time"],
                   parent_run_id=r["parent_run_id"], user=r["user"], source=r["source"], git_commit=r["git_commit"],
                   error=r["error"], artifact_uri=self.artifacts.run_uri(r["experiment_id"], run_id),
                   params=d["params"], metrics=d["metrics"], tags=d["tags"], inputs=inputs)

    def _run_entity(self, run_id: str, st: RunState) -> Run:
        return Run(run_id=run_id, experiment_id=st.experiment_id, experiment_name=st.experiment_name,
                   run_name=st.run_name, status=st.status, start_time=us_to_datetime(st.start_us), end_time=None,
                   parent_run_id=st.parent_run_id, artifact_uri=self.artifacts.run_uri(st.experiment_id, run_id),
                   params=dict(st.params))
