"""Batched logging: ``POST /api/v1/runs/{run_id}/batch`` (JSON or Arrow) and ``POST /api/v1/batch``
(Arrow with a ``run_id`` column: many runs in one body).

JSON: ``{"metrics": [{"key", "value", "step", "timestamp"}], "params": [{"key", "value"}], "tags": [...]}``,
timestamps in milliseconds. Arrow IPC stream (``Content-Type: application/vnd.apache.arrow.stream``):
columns ``key``, ``value`` and optionally ``step`` (default 0), ``timestamp`` (int milliseconds or an Arrow
timestamp; default now) and ``run_id``. The answer comes once the rows are in the server's fsynced spool.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Union

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from lakeml import validation as v
from lakeml.entities import Metric, Param, RunTag
from lakeml.server.api_v1.common import ARROW, batch_time, duplicate_headers, ingest_of, write_key
from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.errors import ApiError

router = APIRouter(tags=["logging"])


class MetricIn(BaseModel):
    key: str
    value: Union[float, str] = Field(description="a number; 'NaN', 'Infinity', '-Infinity' allowed")
    step: int = 0
    timestamp: int | None = Field(None, description="milliseconds since the epoch (default: now)")


class KeyValue(BaseModel):
    key: str
    value: Union[str, int, float, bool, None]


class BatchIn(BaseModel):
    """Metrics, params and tags of one run (all validated before any is stored)."""

    metrics: list[MetricIn] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class BatchOut(BaseModel):
    accepted: int = Field(description="rows stored by this request (0 for a retry of an accepted batch)")
    duplicate: bool = Field(False, description="the batch id was already accepted: nothing stored again")


def _is_arrow(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == ARROW


def _json_batch(raw: bytes) -> BatchIn:
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the body is not valid JSON ({e}); send {{\"metrics\": [...], \"params\": [...], "
                            "\"tags\": [...]}} or an Arrow IPC stream", field="body") from None
    try:
        return BatchIn.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise ApiError(400, f"invalid value for {loc or 'body'}: {first.get('msg')}", field=loc or "body") from None


def _metric_value(m: MetricIn, i: int) -> float:
    if isinstance(m.value, float):
        return m.value
    try:
        return float(m.value)
    except ValueError:
        raise ApiError(400, f"metrics.{i}.value {m.value!r} is not a number ('NaN' and 'Infinity' are allowed)",
                       field=f"metrics.{i}.value") from None


def arrow_metrics(raw: bytes, run_id: str | None, contract: Any, now_us: int) -> tuple[Any, list[str]]:
    """Decode an Arrow IPC stream of metric points into the ``metrics`` contract schema; returns the
    table and the run ids it names. 400 naming the column on anything malformed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        data = pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
    except Exception as e:
        raise ApiError(400, f"the body is not an Arrow IPC stream ({type(e).__name__}: {e}); write it with "
                            "pyarrow.ipc.new_stream, or send JSON", field="body") from None
    n = data.num_rows
    cols = set(data.column_names)
    unknown = cols - {"run_id", "key", "value", "step", "timestamp"}
    if unknown:
        raise ApiError(400, f"unknown column(s) {sorted(unknown)} in the Arrow body; the columns are run_id, key, "
                            "value, step, timestamp", field=sorted(unknown)[0])
    for need in ("key", "value"):
        if need not in cols:
            raise ApiError(400, f"the Arrow body has no {need!r} column; it needs key and value (step, timestamp "
                                "and run_id are optional)", field=need)

    def cast(name: str, typ: Any) -> Any:
        col = data.column(name)
        try:
            col = col.cast(typ)
        except Exception as e:
            raise ApiError(400, f"column {name!r} of type {data.schema.field(name).type} cannot be read as {typ} "
                                f"({e})", field=name) from None
        if col.null_count:
            raise ApiError(400, f"column {name!r} has {col.null_count} null value(s); every point needs one",
                           field=name)
        return col

    if "run_id" in cols:
        rid = cast("run_id", pa.string())
        run_ids = [r for r in pc.unique(rid).to_pylist()]
        if run_id is not None and run_ids and run_ids != [run_id]:
            raise ApiError(400, f"the body's run_id column names {run_ids[:3]} but the path names run {run_id}; "
                                "drop the column or post to /api/v1/batch", field="run_id")
    elif run_id is None:
        raise ApiError(400, "the Arrow body has no run_id column; POST /api/v1/batch needs one (or post to "
                            "/api/v1/runs/{run_id}/batch)", field="run_id")
    else:
        rid = pa.chunked_array([pa.array([run_id] * n, pa.string())])
        run_ids = [run_id] if n else []
    for r in run_ids:
        try:
            v.validate_run_id(r)
        except ValueError as e:
            raise ApiError(400, str(e), field="run_id") from None
    key = cast("key", pa.string())
    for k in pc.unique(key).to_pylist():
        try:
            v.validate_key(k, "metric")
        except ValueError as e:
            raise ApiError(400, str(e), field="key") from None
    value = cast("value", pa.float64())
    step = cast("step", pa.int64()) if "step" in cols else pa.chunked_array([pa.array([0] * n, pa.int64())])
    schema = contract.arrow_schema()
    ts_type = schema.field("timestamp").type
    if "timestamp" in cols:
        col = data.column("timestamp")
        if pa.types.is_timestamp(col.type):
            ts = col.cast(pa.timestamp("us", tz=col.type.tz or "UTC")).cast(ts_type)
        elif pa.types.is_integer(col.type):
            ts = pc.multiply(col.cast(pa.int64()), 1000).cast(pa.timestamp("us", tz="UTC")).cast(ts_type)
        else:
            raise ApiError(400, f"column 'timestamp' of type {col.type} must be integer milliseconds or an Arrow "
                                "timestamp", field="timestamp")
        if ts.null_count:
            ts = pc.fill_null(ts, pa.scalar(now_us, pa.timestamp("us", tz="UTC")).cast(ts_type))
    else:
        ts = pa.chunked_array([pa.array([now_us] * n, pa.int64()).cast(pa.timestamp("us", tz="UTC")).cast(ts_type)])
    table = pa.Table.from_arrays([rid.combine_chunks() if hasattr(rid, "combine_chunks") else rid,
                                  key, value, step, ts], schema=schema)
    return table, run_ids


def _check_runs(lake: Any, run_ids: list[str]) -> None:
    for r in run_ids:
        lake.tracking.run_state(r)  # NotFoundError -> 404


def log_json(lake: Any, run_id: str, batch: BatchIn) -> tuple[Any, int]:
    """Validate a JSON batch fully (params against the run's stored ones) before anything is buffered."""
    metrics = [Metric(m.key, _metric_value(m, i), m.step, m.timestamp) for i, m in enumerate(batch.metrics)]
    params = [Param(p.key, p.value) for p in batch.params]
    tags = [RunTag(t.key, t.value) for t in batch.tags]
    return (metrics, params, tags), len(metrics) + len(params) + len(tags)


@router.post("/runs/{run_id}/batch", response_model=BatchOut,
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": BatchIn.model_json_schema()},
                 ARROW: {"schema": {"type": "string", "format": "binary"}}}}})
async def log_batch(run_id: str, request: Request, principal: Principal = Depends(require("write"))):
    """Log metrics, params and tags of one run, as JSON or an Arrow IPC stream of metric points.

    Send ``X-Lakeml-Batch-Id`` (and ``X-Lakeml-Retry: 1`` when resending) to make retries safe."""
    from starlette.concurrency import run_in_threadpool

    raw = await request.body()
    return await run_in_threadpool(_log_batch_sync, request, run_id, raw, principal)


def _log_batch_sync(request: Request, run_id: str, raw: bytes, principal: Principal) -> JSONResponse:
    lake = lake_of(request)
    key, retry = write_key(request)
    try:
        v.validate_run_id(run_id)
    except ValueError as e:
        raise ApiError(400, str(e), field="run_id") from None
    if _is_arrow(request):
        prepare, add = _arrow_write(lake, raw, run_id)
    else:
        batch = _json_batch(raw)

        def prepare() -> Any:
            _check_runs(lake, [run_id])
            return log_json(lake, run_id, batch)

        def add(prepared: Any) -> int:
            (metrics, params, tags), n = prepared
            lake.tracking.log_batch(run_id, metrics, params, tags)  # validates all before buffering any
            return n

    dup, prepared = ingest_of(request).write(key, retry, principal.name, "log", prepare, add,
                                             since_ms=batch_time(request))
    n = 0 if dup else (prepared.num_rows if _is_arrow(request) else prepared[1])
    return JSONResponse({"accepted": n, "duplicate": dup}, headers=duplicate_headers(dup))


@router.post("/batch", response_model=BatchOut,
             openapi_extra={"requestBody": {"required": True, "content": {
                 ARROW: {"schema": {"type": "string", "format": "binary"}}}}})
async def log_points(request: Request, principal: Principal = Depends(require("write"))):
    """Log metric points of many runs in one Arrow IPC stream (columns run_id, key, value, step, timestamp)."""
    from starlette.concurrency import run_in_threadpool

    raw = await request.body()
    return await run_in_threadpool(_log_points_sync, request, raw, principal)


def _log_points_sync(request: Request, raw: bytes, principal: Principal) -> JSONResponse:
    if not _is_arrow(request):
        raise ApiError(415, f"POST /api/v1/batch takes an Arrow IPC stream (Content-Type: {ARROW}); for JSON "
                            "use POST /api/v1/runs/{run_id}/batch", code="INVALID_PARAMETER_VALUE",
                       field="Content-Type")
    lake = lake_of(request)
    key, retry = write_key(request)
    prepare, add = _arrow_write(lake, raw, None)

    dup, table = ingest_of(request).write(key, retry, principal.name, "points", prepare, add,
                                          since_ms=batch_time(request))
    n = 0 if dup else table.num_rows
    return JSONResponse({"accepted": n, "duplicate": dup}, headers=duplicate_headers(dup))


def _arrow_write(lake: Any, raw: bytes, run_id: str | None) -> tuple[Callable[[], Any], Callable[[Any], int]]:
    """The ``prepare``/``add`` pair of an Arrow IPC body of metric points (``run_id``: the route's run,
    or None when the body has a ``run_id`` column) for :meth:`Ingest.write`."""
    def prepare() -> Any:
        table, run_ids = arrow_metrics(raw, run_id, lake.store.contracts["metrics"], lake.clock())
        _check_runs(lake, run_ids)
        return table

    def add(table: Any) -> int:
        if table.num_rows:
            lake.committer.buffer("metrics").add_arrow(table)
        return table.num_rows

    return prepare, add
