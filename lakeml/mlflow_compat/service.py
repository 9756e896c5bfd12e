"""MLflow's tracking verbs over a Lake: request dicts in, MLflow response dicts out.

One :class:`MlflowTracking` serves every request of a server (it holds no per-request state). Its
methods take the request as MLflow's REST API carries it (JSON body or query parameters, already
merged into one dict) and return the response body. Errors are lakeml's typed errors; the server
turns them into MLflow's ``{"error_code", "message"}``.

Writes use the Lake's own verbs, so a run logged through MLflow is stored exactly as a native one:
``mlflow.runName`` and ``mlflow.parentRunId`` go into the run's columns (see :mod:`.tags`), every
other tag is a tag, params are write-once, metrics are points of ``lakeml.metrics``.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Mapping

from lakeml import validation as v
from lakeml.entities import Metric, Param, RunStatus, RunTag
from lakeml.errors import InvalidInputError, NotFoundError
from lakeml.identity import declaring_source
from lakeml.ids import DEFAULT_EXPERIMENT, experiment_id_for
from lakeml.mlflow_compat import convert as C
from lakeml.mlflow_compat import search as S
from lakeml.mlflow_compat import tags as T

#: MLflow's id of the default experiment; lakeml's is derived from the name "Default"
MLFLOW_DEFAULT_EXPERIMENT_ID = "0"

#: Key of the raw HTTP body in a request dict (set by the server; not an MLflow field, so never sent by one).
RAW_BODY = "\x00body"


def field(req: Mapping[str, Any], name: str, *, required: bool = True, default: Any = None) -> Any:
    """``req[name]``; InvalidInputError naming the field when a required one is missing or empty."""
    val = req.get(name)
    if val is None or val == "":
        if required:
            raise InvalidInputError(f"missing value for required parameter '{name}'; see MLflow's REST API "
                                    "reference for this endpoint")
        return default
    return val


def _str_field(req: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    val = field(req, name, required=required)
    if val is not None and not isinstance(val, str):
        raise InvalidInputError(f"parameter '{name}' must be a string, got {val!r}")
    return val


def _int_field(req: Mapping[str, Any], name: str, *, required: bool = False, default: int | None = None) -> int | None:
    val = field(req, name, required=required, default=default)
    if val is None:
        return None
    try:
        if isinstance(val, bool):
            raise ValueError
        n = int(val)
        if isinstance(val, float) and val != n:
            raise ValueError
        return n
    except (TypeError, ValueError):
        raise InvalidInputError(f"parameter '{name}' must be an integer, got {val!r}") from None


def _list_field(req: Mapping[str, Any], name: str) -> list:
    val = req.get(name)
    if val is None:
        return []
    if isinstance(val, str):
        return [val]
    if not isinstance(val, list):
        raise InvalidInputError(f"parameter '{name}' must be a list, got {type(val).__name__}")
    return val


def _kv_items(req: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
    out = []
    for i, item in enumerate(_list_field(req, name)):
        if not isinstance(item, Mapping) or "key" not in item:
            raise InvalidInputError(f"{name}[{i}] must be an object with 'key' and 'value', got {item!r}")
        out.append((item["key"], item.get("value")))
    return out


class MlflowTracking:
    """Experiments, runs, logging, search and metric history in MLflow's shapes, over one Lake.

    ``artifact_location(experiment_id)`` and ``run_artifact_uri(experiment_id, run_id)`` say where
    MLflow clients are told artifacts live (default: the server's artifact proxy).
    ``durable(add)`` runs a function that only buffers rows and returns once they are durable (the
    server passes its group-sync door; default: add and hand off to the committer).
    """

    def __init__(self, lake: Any, *, artifact_location: Callable[[str], str] = C.proxy_experiment_location,
                 run_artifact_uri: Callable[[str, str], str] = C.proxy_run_artifact_uri,
                 durable: Callable[[Callable[[], Any]], Any] | None = None):
        self.lake = lake
        self.artifact_location = artifact_location
        self.run_artifact_uri = run_artifact_uri
        self.durable = durable or self._handoff
        self._names: dict[str, Any] = {}  # experiment id -> Experiment (names never change)
        self._lock = threading.Lock()

    def _handoff(self, add: Callable[[], Any], key: str | None = None) -> Any:
        out = add()
        self.lake.committer.handoff()
        return out

    # -- experiments --------------------------------------------------------------------------
    def experiment_id(self, eid: Any) -> str:
        """A lakeml experiment id for an MLflow one (``"0"`` is the Default experiment)."""
        if not isinstance(eid, (str, int)) or isinstance(eid, bool) or str(eid) == "":
            raise InvalidInputError(f"experiment_id must be a string, got {eid!r}")
        eid = str(eid)
        return experiment_id_for(DEFAULT_EXPERIMENT) if eid == MLFLOW_DEFAULT_EXPERIMENT_ID else eid

    def experiment(self, eid: Any) -> Any:
        """The :class:`~lakeml.entities.Experiment` with that (MLflow) id; NotFoundError if none."""
        eid = self.experiment_id(eid)
        exp = self._names.get(eid)
        if exp is None:
            if eid == experiment_id_for(DEFAULT_EXPERIMENT):
                self.lake.tracking.get_or_create_experiment(DEFAULT_EXPERIMENT)
            for attempt in range(2):
                if attempt:  # rows another thread's commit had in flight: wait for them once
                    self.lake.committer.flush()
                for e in self.lake.tracking.list_experiments():
                    self._names[e.experiment_id] = e
                exp = self._names.get(eid)
                if exp is not None:
                    break
        if exp is None:
            raise NotFoundError(f"no experiment with id {eid!r}; list them with experiments/search "
                                "or 'lakeml experiments list'")
        return exp

    def _exp_dict(self, exp: Any) -> dict[str, Any]:
        return C.experiment_dict(exp, artifact_location=self.artifact_location(exp.experiment_id))

    def create_experiment(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = _str_field(req, "name")
        tags = dict(_kv_items(req, "tags"))
        eid = self.durable(lambda: self.lake.tracking.create_experiment(name, tags=tags or None))
        from lakeml.entities import Experiment
        from lakeml.clock import us_to_datetime

        self._names[eid] = Experiment(eid, name, f"{self.lake.artifacts.root}/{eid}",
                                      us_to_datetime(self.lake.tracking.clock()), {str(k): str(x) for k, x in tags.items()})
        return {"experiment_id": eid}

    def get_experiment(self, req: Mapping[str, Any]) -> dict[str, Any]:
        return {"experiment": self._exp_dict(self.experiment(field(req, "experiment_id")))}

    def get_experiment_by_name(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = _str_field(req, "experiment_name")
        return {"experiment": self._exp_dict(self.lake.tracking.get_experiment_by_name(name))}

    def search_experiments(self, req: Mapping[str, Any]) -> dict[str, Any]:
        max_results = S.max_results_value(req.get("max_results"), default=1000)
        offset = S.decode_page_token(req.get("page_token"))
        view = S.run_view_type(req.get("view_type"))
        exps = [] if view == "DELETED_ONLY" else self.lake.tracking.list_experiments()
        pred = experiment_filter(req.get("filter"))
        exps = [e for e in exps if pred(e)]
        exps = order_experiments(exps, _list_field(req, "order_by"))
        rows, token = S.page(exps[offset:offset + max_results + 1], offset, max_results)
        out: dict[str, Any] = {"experiments": [self._exp_dict(e) for e in rows]}
        if token:
            out["next_page_token"] = token
        return out

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, req: Mapping[str, Any]) -> dict[str, Any]:
        exp = self.experiment(req.get("experiment_id") or MLFLOW_DEFAULT_EXPERIMENT_ID)
        tags = dict(_kv_items(req, "tags"))
        run_name, parent, rest = T.split_create_tags(tags, _str_field(req, "run_name", required=False))
        start = _int_field(req, "start_time")
        with declaring_source(tags.get(T.SOURCE_NAME), tags.get(T.GIT_COMMIT)):  # the client's, not the server's
            run = self.durable(lambda: self.lake.tracking.create_run(exp.name, run_name=run_name,
                                                                     parent_run_id=parent, tags=rest or None,
                                                                     start_time_ms=start))
        run = _replace(run, tags={**({T.LAKEML_PARENT: parent} if parent else {}), **{k: str(x) for k, x in
                                                                                       rest.items()}},
                       user=req.get("user_id") or None)
        return {"run": C.run_dict(run, artifact_uri=self.run_artifact_uri(run.experiment_id, run.run_id), metrics=[])}

    def _run_id(self, req: Mapping[str, Any]) -> str:
        rid = req.get("run_id") or req.get("run_uuid")
        if not rid:
            raise InvalidInputError("missing value for required parameter 'run_id'")
        if not isinstance(rid, str):
            raise InvalidInputError(f"parameter 'run_id' must be a string, got {rid!r}")
        return v.validate_run_id(rid)

    def update_run(self, req: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(req)
        st = self.lake.tracking.run_state(run_id)
        status = req.get("status")
        end = _int_field(req, "end_time")
        name = req.get("run_name")
        if name and name != st.run_name:
            raise InvalidInputError(f"run_name {name!r}: lakeml runs keep the name they were created with "
                                    f"({st.run_name!r}); renaming is not supported. Set a tag instead.")
        if status not in (None, "", "RUNNING", 1):
            status = _status(status)
            self.lake.tracking.set_terminated(run_id, status, end_time_ms=end)
        info = {"run_id": run_id, "run_uuid": run_id, "run_name": st.run_name, "experiment_id": st.experiment_id,
                "status": getattr(st.status, "value", st.status),
                "start_time": st.start_us // 1000 if st.start_us else None,
                "end_time": end if status not in (None, "", "RUNNING", 1) else None,
                "artifact_uri": self.run_artifact_uri(st.experiment_id, run_id), "lifecycle_stage": C.ACTIVE}
        return {"run_info": {k: x for k, x in info.items() if x is not None}}

    def get_run(self, req: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(req)
        run = self.lake.tracking.get_run(run_id)
        latest = self._latest_metrics([run_id]).get(run_id, [])
        return {"run": C.run_dict(run, metrics=latest, artifact_uri=self.run_artifact_uri(run.experiment_id, run_id))}

    def _latest_metrics(self, run_ids: list[str]) -> dict[str, list[dict]]:
        if not run_ids:
            return {}
        engine = self.lake.query.engine
        _, rows = engine.rows("SELECT run_id, key, value, step, epoch_ms(timestamp) FROM lakeml.metric_latest "
                              "WHERE run_id IN (SELECT unnest($1::VARCHAR[])) ORDER BY run_id, key", [run_ids],
                              tables=["metric_latest"])
        out: dict[str, list[dict]] = {}
        for rid, key, val, step, ts in rows:
            out.setdefault(rid, []).append({"key": key, "value": val, "step": step, "timestamp": ts})
        return out

    def search_runs(self, req: Mapping[str, Any]) -> dict[str, Any]:
        from lakeml.entities import Run
        from lakeml.query.runs import search_runs

        ids = [self.experiment_id(e) for e in _list_field(req, "experiment_ids")]
        view = S.run_view_type(req.get("run_view_type"))
        max_results = S.max_results_value(req.get("max_results"))
        offset = S.decode_page_token(req.get("page_token"))
        flt = S.translate_filter(req.get("filter"))
        order = S.translate_order_by(_list_field(req, "order_by"))
        if view == "DELETED_ONLY":
            return {}
        self.lake.query.before_read()
        rows = search_runs(self.lake.query.engine, experiment_ids=ids or None, filter_string=flt, order_by=order,
                           max_results=max_results + 1, offset=offset).to_dicts()
        rows, token = S.page(rows, offset, max_results)
        latest = self._latest_metrics([r["run_id"] for r in rows])
        runs = []
        for r in rows:
            maps: dict[str, dict] = {"params": {}, "metrics": {}, "tags": {}}
            for k, val in r.items():
                ent, dot, key = k.partition(".")
                if dot and ent in maps and val is not None:
                    maps[ent][key] = val
            run = Run(run_id=r["run_id"], experiment_id=r["experiment_id"], experiment_name=r.get("experiment_name"),
                      run_name=r.get("run_name"), status=RunStatus(r["status"]), start_time=r.get("start_time"),
                      end_time=r.get("end_time"), parent_run_id=r.get("parent_run_id"), user=r.get("user"),
                      source=r.get("source"), git_commit=r.get("git_commit"), params=maps["params"],
                      metrics=maps["metrics"], tags=maps["tags"])
            runs.append(C.run_dict(run, metrics=latest.get(run.run_id, []),
                                   artifact_uri=self.run_artifact_uri(run.experiment_id, run.run_id)))
        out: dict[str, Any] = {"runs": runs} if runs else {}
        if token:
            out["next_page_token"] = token
        return out

    # -- logging ------------------------------------------------------------------------------
    def log_batch(self, req: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(req)
        metrics = metric_columns(req.get("metrics"), self.lake.tracking.clock() // 1000)
        params = [Param(k, val) for k, val in _kv_items(req, "params")]
        tags = [RunTag(k, "" if val is None else val) for k, val in _kv_items(req, "tags")]
        self._log(run_id, metrics, params, tags, key=batch_key(run_id, req) if req.get("metrics") else None)
        return {}

    def _log(self, run_id: str, metrics: list, params: list, tags: list, key: str | None = None) -> None:
        tracking = self.lake.tracking
        tracking.run_state(run_id)  # reads (NotFoundError) before the buffering, which must not read
        self.durable(lambda: tracking.log_batch(run_id, metrics=metrics, params=params, tags=tags), key=key)

    def log_metric(self, req: Mapping[str, Any]) -> dict[str, Any]:
        key = field(req, "key")
        body = {"run_id": req.get("run_id") or req.get("run_uuid"),
                "metrics": [{"key": key, "value": field(req, "value"), "step": req.get("step", 0),
                             "timestamp": req.get("timestamp")}]}
        return self.log_batch(body)

    def log_param(self, req: Mapping[str, Any]) -> dict[str, Any]:
        key = field(req, "key")
        return self.log_batch({"run_id": req.get("run_id") or req.get("run_uuid"),
                               "params": [{"key": key, "value": field(req, "value", required=False, default="")}]})

    def set_tag(self, req: Mapping[str, Any]) -> dict[str, Any]:
        key = field(req, "key")
        return self.log_batch({"run_id": req.get("run_id") or req.get("run_uuid"),
                               "tags": [{"key": key, "value": req.get("value", "")}]})

    def delete_tag(self, req: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(req)
        key = _str_field(req, "key")
        run = self.lake.tracking.get_run(run_id)
        if key not in run.tags:
            raise NotFoundError(f"no tag {key!r} on run {run_id}; nothing to delete")
        self.durable(lambda: self.lake.tracking.delete_tag(run_id, key))
        return {}

    def log_inputs(self, req: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(req)
        rows = [C.dataset_input_row(d) for d in _list_field(req, "datasets") if isinstance(d, Mapping)]
        if len(rows) != len(_list_field(req, "datasets")):
            raise InvalidInputError("datasets[] must be objects with 'dataset' and 'tags'")
        self.lake.tracking.run_state(run_id)
        for r in rows:
            v.validate_key(r["role"], "input role")
            v.validate_name(r["name"], "dataset")
        buf = self.lake.committer.buffer("inputs")
        now = self.lake.tracking.clock()

        def add() -> None:
            for r in rows:
                buf.add((run_id, r["role"], r["kind"], r["name"], r["table"], r["snapshot_id"], r["schema_id"],
                         r["uri"], r["digest"], r["catalog"], now))
        self.durable(add)
        return {}

    def get_metric_history(self, req: Mapping[str, Any]) -> dict[str, Any]:
        run_id = self._run_id(req)
        key = _str_field(req, "metric_key")
        max_results = S.max_results_value(req.get("max_results"), default=S.MAX_RESULTS_THRESHOLD * 500)
        offset = S.decode_page_token(req.get("page_token"))
        self.lake.tracking.run_state(run_id)
        hist = self.lake.query.get_metric_history(run_id, key)
        pts = C.metric_dicts(hist.slice(offset, max_results + 1))
        pts, token = S.page(pts, offset, max_results)
        out: dict[str, Any] = {"metrics": pts}
        if token:
            out["next_page_token"] = token
        return out


#: batches at least this long go to log_batch as Arrow columns (validated column by column)
COLUMNAR_MIN = 32


def metric_columns(raw: Any, now_ms: int) -> Any:
    """MLflow's ``metrics`` list (``[{"key", "value", "timestamp", "step"}]``; int64 fields may be JSON
    strings, values ``"NaN"``/``"Infinity"``) as lakeml ``log_batch`` metrics: a list of Metric for short
    batches, a dict of Arrow columns for long ones (no per-point objects)."""
    if raw is None:
        return []
    if type(raw) is not list:
        raise InvalidInputError(f"metrics must be a list of objects with key, value, timestamp and step, got "
                                f"{type(raw).__name__}")
    n = len(raw)
    keys: list[Any] = [None] * n
    vals: list[Any] = [None] * n
    steps: list[Any] = [None] * n
    stamps: list[Any] = [None] * n
    for i, m in enumerate(raw):
        try:
            k, val, st, ts = m["key"], m["value"], m.get("step", 0), m.get("timestamp")
        except (TypeError, KeyError, AttributeError):
            raise InvalidInputError(f"metrics[{i}] must be an object with key, value, timestamp and step, got "
                                    f"{str(m)[:100]}") from None
        if type(k) is not str:
            raise InvalidInputError(f"metrics[{i}].key must be a string, got {k!r}")
        keys[i] = k
        if type(val) is float:
            vals[i] = val
        else:
            try:
                if isinstance(val, bool):
                    raise ValueError(val)
                vals[i] = C.float_from_json(val)
            except (TypeError, ValueError):
                raise InvalidInputError(f"metrics[{i}].value {val!r} of metric {k!r} is not a number") from None
        steps[i] = st if type(st) is int else _int_field(m, "step", default=0)
        stamps[i] = ts if type(ts) is int else (now_ms if ts is None or ts == "" else _int_field(m, "timestamp"))
    if n < COLUMNAR_MIN:
        return [Metric(keys[i], vals[i], steps[i], stamps[i]) for i in range(n)]
    import pyarrow as pa

    try:
        return {"key": pa.array(keys, pa.large_string()), "value": pa.array(vals, pa.float64()),
                "step": pa.array(steps, pa.int64()), "timestamp": pa.array(stamps, pa.int64())}
    except (pa.ArrowInvalid, OverflowError) as e:
        raise InvalidInputError(f"metrics: a step or timestamp is out of the int64 range: {e}") from None


def _status(value: Any) -> RunStatus:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInputError(f"status {value!r} is not a run status; use RUNNING, FINISHED, FAILED or KILLED")
    names = {2: "FINISHED", 3: "FAILED", 4: "SCHEDULED", 5: "KILLED"}
    name = names.get(value, value)
    try:
        return RunStatus(str(name).upper())
    except ValueError:
        raise InvalidInputError(f"status {value!r} is not a run status; use RUNNING, FINISHED, FAILED or KILLED") \
            from None


def _replace(run: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(run, **{k: x for k, x in changes.items() if x is not None})


# -- experiment search ----------------------------------------------------------------------------
def experiment_filter(text: Any) -> Callable[[Any], bool]:
    """MLflow's experiment filter (``name = 'x'``, ``name LIKE 'a%'``, ``tags.k = 'v'``, joined by AND)."""
    import re

    if text is None or not str(text).strip():
        return lambda e: True
    if not isinstance(text, str):
        raise InvalidInputError(f"filter must be a string, got {text!r}")
    clause = re.compile(r"""\s*(?:attributes\.)?(name|tags\.(?:`[^`]+`|"[^"]+"|[\w.\-/]+))\s*
                            (=|!=|LIKE|ILIKE)\s*'((?:[^']|'')*)'\s*""", re.X | re.I)
    parts = re.split(r"\s+and\s+", text.strip(), flags=re.I)
    preds = []
    for p in parts:
        m = clause.fullmatch(p)
        if not m:
            raise InvalidInputError(f"invalid experiment filter clause {p!r}: lakeml supports name or tags.<key> "
                                    "with =, !=, LIKE or ILIKE and a quoted value, joined by AND")
        ident, op, val = m.group(1), m.group(2).upper(), m.group(3).replace("''", "'")
        preds.append((ident, op, val))

    def like(pattern: str, s: str, ci: bool) -> bool:
        rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
        return re.fullmatch(rx, s, re.S | (re.I if ci else 0)) is not None

    def pred(e: Any) -> bool:
        for ident, op, val in preds:
            if ident.lower() == "name":
                got = e.name
            else:
                got = e.tags.get(S._unquote(ident.split(".", 1)[1]))
            if got is None:
                return False
            if op == "=" and got != val or op == "!=" and got == val:
                return False
            if op in ("LIKE", "ILIKE") and not like(val, got, op == "ILIKE"):
                return False
        return True
    return pred


def order_experiments(exps: list, order_by: Iterable[str]) -> list:
    """Sort experiments by MLflow's order_by (name, experiment_id, creation_time, last_update_time)."""
    keys = list(order_by) or ["creation_time DESC", "experiment_id ASC"]
    out = list(exps)
    for item in reversed(keys):
        parts = str(item).split()
        col = parts[0].split(".", 1)[-1].lower()
        desc = len(parts) > 1 and parts[1].upper() == "DESC"
        getters = {"name": lambda e: e.name, "experiment_id": lambda e: e.experiment_id,
                   "creation_time": lambda e: C.ms(e.created_at) or 0,
                   "last_update_time": lambda e: C.ms(e.created_at) or 0}
        if col not in getters:
            raise InvalidInputError(f"order_by {item!r}: experiments can be ordered by name, experiment_id, "
                                    "creation_time or last_update_time")
        out.sort(key=getters[col], reverse=desc)
    return out


def batch_key(run_id: str, req: Mapping[str, Any]) -> str:
    """An idempotency key for an MLflow log-batch (its protocol has none): a digest of the run and the
    points. A batch re-sent after a lost acknowledgement (a server killed mid-request) is then stored
    once, as MLflow's own stores keep one row per (run, key, timestamp, step, value). Over HTTP the
    digest is of the raw body (a client re-sends the same bytes), which costs no JSON encoding."""
    import hashlib
    import json

    raw = req.get(RAW_BODY)
    if isinstance(raw, (bytes, bytearray)) and raw:
        return "mlflow-" + hashlib.sha256(run_id.encode() + b"\0" + bytes(raw)).hexdigest()[:40]
    blob = json.dumps([run_id, req.get("metrics"), req.get("params"), req.get("tags")], sort_keys=True,
                      separators=(",", ":"), default=str)
    return "mlflow-" + hashlib.sha256(blob.encode()).hexdigest()[:40]
