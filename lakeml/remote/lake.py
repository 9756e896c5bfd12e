"""``RemoteLake``: the :class:`~lakeml.client.lake.Lake` interface over ``lakeml server``'s ``/api/v1``.

``lakeml.connect("http://host:5000")`` (or ``$LAKEML_TRACKING_URI``) returns one. Logging never
blocks: run creation, points, params, tags and run ends are queued and sent in the background (see
:mod:`lakeml.remote.sender`), so a run goes on while the server is down. Run ids are chosen here, so
``create_run`` answers at once. Reads (``get_run``, ``search_runs``, ``sql``...) first wait until the
server acknowledged this client's writes (read-your-writes), then ask the server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from lakeml import validation as v
from lakeml.entities import ArtifactInfo, DatasetInput, Experiment, Metric, Param, Run, RunStatus, RunTag
from lakeml.errors import ConflictError, InvalidInputError
from lakeml.ids import DEFAULT_EXPERIMENT, experiment_id_for
from lakeml.remote.http import ARROW, Http
from lakeml.remote.sender import Sender

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl
    import pyarrow as pa

_I64 = (-(2**63), 2**63 - 1)
_LIVE: list["RemoteLake"] = []
_EXIT_HOOKED = False


def _dt(s: Any) -> datetime | None:
    return datetime.fromisoformat(s) if isinstance(s, str) else s


def _run(d: dict[str, Any]) -> Run:
    fields = {f.name for f in dataclasses.fields(Run)}
    kw = {k: d.get(k) for k in fields if k in d}
    kw["status"] = RunStatus(d["status"])
    kw["start_time"], kw["end_time"] = _dt(d.get("start_time")), _dt(d.get("end_time"))
    kw["inputs"] = [DatasetInput(**i) for i in d.get("inputs") or []]
    for k in ("params", "tags", "metrics"):
        kw[k] = dict(d.get(k) or {})
    kw["metrics"] = {k: float(x) for k, x in kw["metrics"].items()}
    return Run(**kw)


def _experiment(d: dict[str, Any]) -> Experiment:
    return Experiment(d["experiment_id"], d["name"], d.get("artifact_location"), _dt(d.get("created_at")),
                      dict(d.get("tags") or {}))


def _record(cls: Any, d: dict[str, Any]) -> Any:
    """A registry record (ModelVersion, RegisteredModel...) from its JSON."""
    rec = cls.from_stored(d)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = {k: x for k, x in d.items() if k in names and k not in cls.STORED}
    return rec.replace(**extra) if extra else rec


def _records(cls_name: str, items: list[dict[str, Any]]) -> list[Any]:
    from lakeml.registry import records

    cls = getattr(records, cls_name)
    return [_record(cls, d) for d in items]


class RunCheck:
    """What the client knows of one run: its experiment and its params (write-once, checked here)."""

    __slots__ = ("experiment_id", "experiment_name", "params", "status")

    def __init__(self, experiment_id: str, experiment_name: str | None, params: dict[str, str] | None = None,
                 status: RunStatus = RunStatus.RUNNING):
        self.experiment_id, self.experiment_name = experiment_id, experiment_name
        self.params = dict(params or {})
        self.status = status


class RemoteTracking:
    """``lake.tracking`` of a remote lake: the logging hot path and what the fluent API asks of it."""

    def __init__(self, lake: "RemoteLake"):
        self._lake = lake
        self._ok_keys: set[str] = set()

    def run_state(self, run_id: str) -> RunCheck:
        return self._lake._check(run_id)

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Queue one metric point (no I/O). NaN and +/-inf are sent as they are."""
        lake = self._lake
        if run_id not in lake._runs:
            lake._check(run_id)
        if type(key) is not str or key not in self._ok_keys:
            v.validate_key(key, "metric")
            self._ok_keys.add(key)
        if type(value) is not float:
            value = v.metric_value(value, key)
        if type(step) is not int or not _I64[0] <= step <= _I64[1]:
            step = v.step_value(step, key)
        ts = v.timestamp_ms(timestamp, key) if timestamp is not None else time.time_ns() // 1_000_000
        lake._sender.point((run_id, key, value, step, ts))


class RemoteLake:
    """A lake served by ``lakeml server`` (see the module docstring). Same verbs as ``Lake`` for what can
    cross HTTP; ``flush()`` waits for the server's acknowledgement of everything logged so far."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0,
                 journal: str | os.PathLike | None | str = "default", interval: float = 0.2):
        self.url = url.rstrip("/")
        self.http = Http(self.url, token, timeout=timeout)
        self._sender = Sender(self.http, interval=interval, root=journal)
        self._runs: dict[str, RunCheck] = {}
        self._lock = threading.Lock()
        self.tracking = RemoteTracking(self)
        self.closed = False
        _hook_exit(self)

    def __repr__(self) -> str:
        return f"RemoteLake({self.url!r})"

    def __enter__(self) -> "RemoteLake":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- lifecycle ----------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Return once the server acknowledged (made durable) everything logged so far."""
        self._sender.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout`` s) and stop the sender; what the server did not take stays journaled."""
        if self.closed:
            return
        self.closed = True
        try:
            self._sender.close(timeout)
        finally:
            if self in _LIVE:
                _LIVE.remove(self)

    @property
    def pending(self) -> int:
        """Requests and points not yet acknowledged by the server."""
        return self._sender.pending()

    def _read(self) -> None:
        """Before a read: the server has everything this client logged (read-your-writes)."""
        if self._sender.pending():
            self._sender.flush()

    # -- experiments --------------------------------------------------------------------------
    def list_experiments(self) -> list[Experiment]:
        self._read()
        return [_experiment(e) for e in self.http.json("GET", "/api/v1/experiments")["experiments"]]

    def get_experiment_by_name(self, name: str) -> Experiment:
        self._read()
        for e in self.http.json("GET", "/api/v1/experiments")["experiments"]:
            if e["name"] == name:
                return _experiment(e)
        from lakeml.errors import NotFoundError

        raise NotFoundError(f"no experiment named {name!r} on {self.url}; list them with 'lakeml experiments list "
                            f"--server {self.url}'")

    def create_experiment(self, name: str, *, tags: Mapping[str, str] | None = None,
                          artifact_location: str | None = None) -> str:
        self._read()
        d = self.http.json("POST", "/api/v1/experiments", json_body={"name": name, "tags": dict(tags or {}),
                                                                     "artifact_location": artifact_location})
        return d["experiment_id"]

    def get_or_create_experiment(self, name: str = DEFAULT_EXPERIMENT, *, tags: Mapping[str, str] | None = None,
                                 artifact_location: str | None = None) -> str:
        """The id of experiment ``name`` (derived from the name; created with the first run logged into it)."""
        v.validate_name(name, "experiment")
        return experiment_id_for(name)

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, experiment: str = DEFAULT_EXPERIMENT, *, run_name: str | None = None,
                   tags: Mapping[str, Any] | None = None, parent_run_id: str | None = None,
                   start_time_ms: int | None = None) -> Run:
        """Start a run; returns at once (the id is chosen here; the server learns of it in the background)."""
        v.validate_name(experiment, "experiment")
        if run_name is not None:
            v.validate_name(run_name, "run")
        if parent_run_id is not None:
            v.validate_run_id(parent_run_id)
        tag_map = {str(k): v.tag_value(x, str(k)) for k, x in (tags or {}).items()}
        for k in tag_map:
            v.validate_key(k, "tag")
        run_id = uuid.uuid4().hex
        run_name = run_name or f"run-{run_id[:8]}"
        start_ms = start_time_ms if start_time_ms is not None else time.time_ns() // 1_000_000
        eid = experiment_id_for(experiment)
        with self._lock:
            self._runs[run_id] = RunCheck(eid, experiment)
        self._sender.request("POST", "/api/v1/runs", {
            "experiment": experiment, "run_name": run_name, "tags": tag_map, "parent_run_id": parent_run_id,
            "start_time": start_ms, "run_id": run_id})
        tags_out = dict(tag_map)
        if parent_run_id:
            tags_out["lakeml.parentRunId"] = parent_run_id
        return Run(run_id=run_id, experiment_id=eid, experiment_name=experiment, run_name=run_name,
                   status=RunStatus.RUNNING, start_time=datetime.fromtimestamp(start_ms / 1000).astimezone(),
                   end_time=None, parent_run_id=parent_run_id, tags=tags_out)

    def _check(self, run_id: str) -> RunCheck:
        st = self._runs.get(run_id)
        if st is not None:
            return st
        run = self.get_run(run_id)
        st = RunCheck(run.experiment_id, run.experiment_name, dict(run.params), run.status)
        with self._lock:
            return self._runs.setdefault(run_id, st)

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *,
                       error: str | None = None, end_time_ms: int | None = None, wait: bool | None = None,
                       flush: bool | None = None) -> None:
        """End a run (queued like the rest); ``wait=True`` returns once the server acknowledged everything."""
        self._check(run_id)
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidInputError(f"unknown run status {status!r}; use FINISHED, FAILED or KILLED") from None
        if error is not None:
            error = v.utf8_escaped(str(error))[: v.MAX_TAG_VALUE_LENGTH]
        end = end_time_ms if end_time_ms is not None else time.time_ns() // 1_000_000
        self._sender.request("POST", f"/api/v1/runs/{run_id}/terminate",
                             {"status": status.value, "end_time": end, "error": error})
        self._runs[run_id].status = status
        if wait or flush:
            self.flush()

    def get_run(self, run_id: str) -> Run:
        v.validate_run_id(run_id)
        self._read()
        return _run(self.http.json("GET", f"/api/v1/runs/{run_id}"))

    # -- logging ------------------------------------------------------------------------------
    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self.tracking.log_metric(run_id, key, value, step, timestamp)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0,
                    timestamp: int | None = None) -> None:
        ts = timestamp if timestamp is not None else time.time_ns() // 1_000_000
        for k, x in metrics.items():
            self.tracking.log_metric(run_id, k, x, step, ts)

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params=[Param(key, value)])

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=[Param(k, x) for k, x in params.items()])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags=[RunTag(key, value)])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=[RunTag(k, x) for k, x in tags.items()])

    def delete_tag(self, run_id: str, key: str) -> None:
        self._check(run_id)
        v.validate_key(key, "tag")
        from urllib.parse import quote

        self._sender.request("DELETE", f"/api/v1/runs/{run_id}/tags/{quote(key, safe='')}", None)

    def log_batch(self, run_id: str, metrics: Iterable[Metric] = (), params: Iterable[Param] = (),
                  tags: Iterable[RunTag] = ()) -> None:
        """Queue metrics, params and tags of a run; everything is validated here first (params are
        write-once: a changed value raises :class:`ConflictError` at once)."""
        st = self._check(run_id)
        p_out, t_out, new = [], [], {}
        for p in params:
            key = v.validate_key(p.key, "param")
            val = v.param_value(p.value, key)
            old = st.params.get(key, new.get(key))
            if old is not None and old != val:
                raise ConflictError(f"param {key!r} of run {run_id} is already {old!r}; params are write-once, so "
                                    f"{val!r} was refused. Log it under a new key, or start a new run.")
            if old is None:
                new[key] = val
                p_out.append({"key": key, "value": val})
        for t in tags:
            key = v.validate_key(t.key, "tag")
            t_out.append({"key": key, "value": v.tag_value(t.value, key)})
        points = []
        for m in metrics:
            key = v.validate_key(m.key, "metric")
            ts = v.timestamp_ms(m.timestamp, key) if m.timestamp is not None else time.time_ns() // 1_000_000
            points.append((run_id, key, v.metric_value(m.value, key), v.step_value(m.step, key), ts))
        st.params.update(new)
        if points:
            self._sender.points(points)
        if p_out or t_out:
            self._sender.request("POST", f"/api/v1/runs/{run_id}/batch", {"params": p_out, "tags": t_out})

    # -- inputs -------------------------------------------------------------------------------
    def log_input(self, run_id: str, *, table: str | None = None, path: str | os.PathLike | None = None,
                  role: str = "train", snapshot_id: int | None = None, name: str | None = None) -> DatasetInput:
        """Record that the run read an Iceberg table of the server's catalog (``path`` inputs are local
        files: use a local lake for them)."""
        if path is not None or table is None:
            raise InvalidInputError("a remote lake records table inputs only: pass table='ns.name' (file inputs "
                                    "are digested where the file is: log them with a local lake)")
        self._read()
        d = self.http.json("POST", f"/api/v1/runs/{run_id}/inputs",
                           json_body={"table": table, "role": role, "snapshot_id": snapshot_id, "name": name})
        return DatasetInput(**d)

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        self._read()
        return [DatasetInput(**d) for d in self.http.json("GET", f"/api/v1/runs/{run_id}/inputs")["inputs"]]

    # -- artifacts ----------------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None) -> str:
        """Upload one file (streamed) to ``artifact_path/<file name>`` of the run; returns its path."""
        from urllib.parse import quote

        from lakeml.storage.artifacts import clean_artifact_path

        src = Path(local_path)
        if src.is_dir():
            raise InvalidInputError(f"{str(src)!r} is a folder; use log_artifacts() for folders")
        if not src.is_file():
            from lakeml.errors import NotFoundError

            raise NotFoundError(f"artifact source {str(src)!r} is not a file")
        prefix = clean_artifact_path(artifact_path)
        rel = f"{prefix}/{src.name}" if prefix else src.name
        self._read()  # the run must be on the server
        size = src.stat().st_size

        def chunks() -> Iterable[bytes]:
            with open(src, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        self.http.request("PUT", f"/api/v1/artifacts/{run_id}/{quote(rel)}", body=chunks(),
                          content_type="application/octet-stream", headers={"Content-Length": str(size)})
        return rel

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[str]:
        """Upload every file below ``local_dir``."""
        base = Path(local_dir)
        if not base.is_dir():
            from lakeml.errors import NotFoundError

            raise NotFoundError(f"artifact folder {str(base)!r} does not exist or is not a folder")
        out = []
        for f in sorted(p for p in base.rglob("*") if p.is_file()):
            sub = f.parent.relative_to(base).as_posix()
            sub = "" if sub == "." else sub
            prefix = "/".join(x for x in (artifact_path or "", sub) if x)
            out.append(self.log_artifact(run_id, f, prefix or None))
        return out

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        self._read()
        d = self.http.json("GET", f"/api/v1/artifacts/{run_id}", params={"path": path or ""})
        return [ArtifactInfo(**f) for f in d["files"]]

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | os.PathLike | None = None) -> str:
        """Download a file or folder of the run's artifacts; returns the local path."""
        import tempfile
        from urllib.parse import quote

        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="lakeml-"))
        files: list[str] = []
        todo = [path or ""]
        path = (path or "").strip("/")
        if path:
            parent = path.rpartition("/")[0]
            me = next((i for i in self.list_artifacts(run_id, parent) if i.path == path), None)
            if me is None:
                from lakeml.errors import NotFoundError

                raise NotFoundError(f"no artifact {path!r} in run {run_id}; list them with list_artifacts()")
            if not me.is_dir:
                files, todo = [path], []
        while todo:
            p = todo.pop()
            for info in self.list_artifacts(run_id, p):
                (todo if info.is_dir else files).append(info.path)
        for rel in files:
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _, _, resp = self.http.request("GET", f"/api/v1/artifacts/{run_id}/{quote(rel)}", stream=True)
            with resp, open(target, "wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
        return str(dst / path) if path else str(dst)

    # -- queries ------------------------------------------------------------------------------
    def _arrow(self, method: str, path: str, **kw: Any) -> "pa.Table":
        import pyarrow as pa

        _, _, data = self.http.request(method, path, accept=ARROW, **kw)
        return pa.ipc.open_stream(pa.py_buffer(data)).read_all()

    def search_runs(self, experiment_names: str | list[str] | None = None, filter_string: str | None = None,
                    order_by: list[str] | None = None, max_results: int = 1000, offset: int = 0) -> "pl.DataFrame":
        """Runs matching an MLflow-style filter, as a polars DataFrame (params.*, metrics.*, tags.* columns)."""
        import polars as pl

        import base64

        if isinstance(experiment_names, str):
            experiment_names = [experiment_names]
        self._read()
        token = base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode() if offset else None
        body = {"experiment_names": experiment_names, "filter": filter_string, "order_by": order_by,
                "max_results": max_results, "page_token": token, "format": "arrow"}
        return pl.from_arrow(self._arrow("POST", "/api/v1/runs/search", json_body=body))

    def get_metric_history(self, run_id: str, key: str | None = None) -> "pl.DataFrame":
        import polars as pl

        self._read()
        return pl.from_arrow(self._arrow("GET", f"/api/v1/runs/{run_id}/metrics/history",
                                         params={"key": key, "format": "arrow"}))

    def sql_arrow(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
                  read_write: bool = False) -> "pa.Table":
        """Read-only SQL on the server (``POST /api/v1/sql``), as Arrow."""
        if read_write or as_of is not None:
            raise InvalidInputError("a remote lake runs read-only SQL without as_of; use a local lake for "
                                    "read_write=True or as_of=")
        self._read()
        return self._arrow("POST", "/api/v1/sql", json_body={"sql": query, "params": params, "format": "arrow"})

    def sql(self, query: str, *, as_of: Any = None, params: list | dict | None = None,
            read_write: bool = False) -> "pl.DataFrame":
        import polars as pl

        return pl.from_arrow(self.sql_arrow(query, as_of=as_of, params=params, read_write=read_write))

    # -- registry -----------------------------------------------------------------------------
    def _q(self, name: str) -> str:
        from urllib.parse import quote

        return quote(str(name), safe="")

    def create_model(self, name: str, *, description: str | None = None,
                     tags: Mapping[str, Any] | None = None) -> Any:
        d = self.http.json("POST", "/api/v1/models", json_body={"name": name, "description": description,
                                                                "tags": dict(tags or {})})
        return _records("RegisteredModel", [d])[0]

    def get_model(self, name: str) -> Any:
        return _records("RegisteredModel", [self.http.json("GET", f"/api/v1/models/{self._q(name)}")])[0]

    def list_models(self) -> list[Any]:
        return _records("RegisteredModel", self.http.json("GET", "/api/v1/models")["models"])

    def register_model(self, name: str, *, run_id: str | None = None, artifact_path: str = "model",
                       source_uri: str | None = None, description: str | None = None,
                       tags: Mapping[str, Any] | None = None) -> Any:
        self._read()
        d = self.http.json("POST", f"/api/v1/models/{self._q(name)}/versions", json_body={
            "run_id": run_id, "artifact_path": artifact_path, "source_uri": source_uri,
            "description": description, "tags": dict(tags or {})})
        return _records("ModelVersion", [d])[0]

    def get_model_version(self, name: str, version: int | str | None = None) -> Any:
        ver = "latest" if version is None else str(version)
        return _records("ModelVersion", [self.http.json("GET", f"/api/v1/models/{self._q(name)}/versions/{ver}")])[0]

    def list_model_versions(self, name: str) -> list[Any]:
        return _records("ModelVersion", self.http.json("GET", f"/api/v1/models/{self._q(name)}/versions")["versions"])

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        d = self.http.json("GET", f"/api/v1/models/{self._q(name)}/aliases/{self._q(alias)}")
        return _records("ModelVersion", [d])[0]

    def set_alias(self, name: str, alias: str, version: int) -> Any:
        d = self.http.json("PUT", f"/api/v1/models/{self._q(name)}/aliases/{self._q(alias)}",
                           json_body={"version": int(version)})
        return _records("ModelAlias", [d])[0]

    def delete_alias(self, name: str, alias: str) -> Any:
        d = self.http.json("DELETE", f"/api/v1/models/{self._q(name)}/aliases/{self._q(alias)}")
        return _records("ModelAlias", [d])[0]

    def check_gates(self, name: str, version: int, *, alias: str | None = None,
                    environment: str | None = None) -> list[str]:
        d = self.http.json("POST", f"/api/v1/models/{self._q(name)}/versions/{int(version)}/gates/check",
                           json_body={"alias": alias, "environment": environment})
        return list(d["failures"])

    def record_deployment(self, name: str, version: int, *, environment: str, service: str,
                          service_version: str | None = None, replace: bool = True) -> Any:
        d = self.http.json("POST", f"/api/v1/models/{self._q(name)}/deployments", json_body={
            "version": int(version), "environment": environment, "service": service,
            "service_version": service_version, "replace": replace})
        return _records("Deployment", [d])[0]

    def list_deployments(self, name: str | None = None, *, environment: str | None = None,
                         active_only: bool = True) -> list[Any]:
        d = self.http.json("GET", "/api/v1/deployments", params={"model": name, "environment": environment,
                                                                 "active_only": str(active_only).lower()})
        return _records("Deployment", d["deployments"])


def connect(url: str | None = None, *, token: str | None = None, timeout: float = 30.0, **kwargs: Any) -> RemoteLake:
    """A :class:`RemoteLake` for ``url`` (default ``$LAKEML_TRACKING_URI``); ``token`` defaults to
    ``$LAKEML_TRACKING_TOKEN``."""
    from lakeml.remote.http import URI_ENV

    url = url or os.environ.get(URI_ENV)
    if not url:
        raise InvalidInputError(f"no server address: pass lakeml.connect('http://host:5000') or set {URI_ENV}")
    return RemoteLake(url, token=token, timeout=timeout, **kwargs)


def _hook_exit(lake: RemoteLake) -> None:
    """At interpreter exit: end the fluent API's active runs, then send what is left (up to 30 s)."""
    global _EXIT_HOOKED
    _LIVE.append(lake)
    if _EXIT_HOOKED:
        return
    _EXIT_HOOKED = True
    import concurrent.futures.thread  # noqa: F401 - our hook must run before executors shut down

    def at_exit() -> None:
        from lakeml.storage import committer

        for fn in list(committer._BEFORE_EXIT_FLUSH):  # the fluent API ends its runs there (idempotent)
            try:
                fn()
            except BaseException:  # pragma: no cover
                pass
        for lk in list(_LIVE):
            try:
                lk.close(timeout=float(os.environ.get("LAKEML_REMOTE_EXIT_TIMEOUT", "30")))
            except BaseException as e:  # pragma: no cover - reported at exit, never raised
                import sys

                print(f"lakeml: {lk.url} did not acknowledge everything at exit ({e}); it stays journaled and "
                      "is re-sent by the next client of this server", file=sys.stderr)

    try:
        threading._register_atexit(at_exit)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # pragma: no cover
        import atexit

        atexit.register(at_exit)
