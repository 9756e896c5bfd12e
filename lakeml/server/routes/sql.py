"""``POST /api/v1/sql``: read-only SQL over the lake (the guard of ``lake.sql``), with a row limit and a
time limit; answers JSON or Arrow IPC. ``GET /api/v1/sql/examples``: the saved queries of ``sql/examples/``.

The query runs on the server's one warm DuckDB engine. A timer interrupts the engine's connection when
the time limit passes (408). A single SELECT is wrapped in ``LIMIT limit+1`` so that no more rows than
needed are read; other statements (SHOW, DESCRIBE, several statements) are cut after the fact.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import re
import threading
import time
import uuid
from typing import Any, Literal, Optional, Union

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from lakeml.errors import QueryError
from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["sql"])
ARROW_STREAM = "application/vnd.apache.arrow.stream"
_LINE = re.compile(r"\bLINE (\d+):")


class SqlRequest(BaseModel):
    """A query: ``sql``, optional ``params`` ($1/? or $name), ``limit`` rows (at most the server's), ``format``."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(..., min_length=1, max_length=1_000_000, description="one or more read-only statements")
    params: Optional[Union[list[Any], dict[str, Any]]] = Field(None, description="values for $1/? or $name")
    limit: Optional[int] = Field(None, ge=0, description="at most this many rows (capped by the server's limit)")
    format: Optional[Literal["json", "arrow"]] = Field(None, description="json (default) or arrow (IPC stream)")


@router.post("/sql", summary="Run read-only SQL over the lake")
def run_sql(body: SqlRequest, request: Request, principal: Principal = Depends(require("read"))) -> Response:
    """Read-only SQL over the lake's tables and views (``lakeml.runs_latest``, ``lakeml.metrics``...).

    JSON: ``{"columns": [{"name", "type"}], "rows": [[...]], "row_count", "truncated", "elapsed_ms"}``.
    Arrow (``format: "arrow"`` or ``Accept: application/vnd.apache.arrow.stream``): an IPC stream, with
    ``X-Lakeml-Truncated`` and ``X-Lakeml-Row-Count`` headers.
    """
    settings = request.app.state.settings
    lake = lake_of(request)
    cap = settings.sql_row_limit
    limit = cap if body.limit is None else min(body.limit, cap)
    fmt = body.format or ("arrow" if ARROW_STREAM in request.headers.get("accept", "") else "json")
    start = time.perf_counter()
    table = run_limited(lake, body.sql, body.params, limit=limit, seconds=settings.sql_time_limit)
    truncated = table.num_rows > limit
    if truncated:
        table = table.slice(0, limit)
    elapsed_ms = round((time.perf_counter() - start) * 1000, 3)
    if fmt == "arrow":
        return Response(_ipc(table), media_type=ARROW_STREAM,
                        headers={"X-Lakeml-Truncated": str(truncated).lower(),
                                 "X-Lakeml-Row-Count": str(table.num_rows), "X-Lakeml-Elapsed-Ms": str(elapsed_ms)})
    return JSONResponse({"columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
                         "rows": _rows(table), "row_count": table.num_rows, "truncated": truncated,
                         "limit": limit, "elapsed_ms": elapsed_ms})


def run_limited(lake: Any, sql: str, params: Any, *, limit: int, seconds: float) -> Any:
    """Run ``sql`` read-only on the lake's engine; at most ``limit + 1`` rows when it is one SELECT; interrupt
    it after ``seconds`` (an :class:`ApiError` 408)."""
    from lakeml.query import guard

    stmts = guard.statements(sql)  # syntax errors with DuckDB's own message, before anything runs
    guard.check_read_only(stmts)
    wrapped = len(stmts) == 1 and stmts[0].type.name == "SELECT"
    if wrapped:
        inner = stmts[0].query.rstrip().rstrip(";")
        query = f"SELECT * FROM (\n{inner}\n) AS __lakeml_q LIMIT {limit + 1}"
    else:
        query = sql
    engine = lake.query.engine
    state = {"running": False, "fired": False}
    guard_lock = threading.Lock()

    def interrupt() -> None:
        with guard_lock:
            if state["running"]:
                state["fired"] = True
                con = engine.session.con
                if con is not None:
                    con.interrupt()

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    lake.query.before_read()  # commit this server's pending rows first, outside the engine's lock
    with engine.lock:  # the timer must interrupt this query, not one queued before it
        with guard_lock:
            state["running"] = True
        timer.start()
        try:
            return lake.query.sql_arrow(query, params=params)
        except QueryError as e:
            if state["fired"]:
                raise ApiError(408, f"the query ran longer than the server's time limit of {seconds:g}s and was "
                                    "stopped; add filters or a LIMIT, or raise LAKEML_SERVER_SQL_SECONDS on the "
                                    "server", code="DEADLINE_EXCEEDED", field="sql") from e
            if wrapped:  # report positions in the query as it was sent
                raise type(e)(_LINE.sub(lambda m: f"LINE {max(1, int(m.group(1)) - 1)}:", str(e))) from e
            raise
        finally:
            with guard_lock:
                state["running"] = False
            timer.cancel()


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _rows(table: Any) -> list[list[Any]]:
    cols = [[_json_value(v) for v in col.to_pylist()] for col in table.columns]
    return [list(r) for r in zip(*cols)] if cols else []


def _json_value(v: Any) -> Any:
    """A value as JSON can hold it: NaN/inf as "nan"/"inf"/"-inf", times as ISO 8601, bytes as base64."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):  # an Arrow map: [(key, value), ...]
            return {str(k): _json_value(x) for k, x in v}
        return [_json_value(x) for x in v]
    return str(v)


@router.get("/sql/examples", summary="Saved example queries", dependencies=[Depends(require("read"))])
def sql_examples() -> dict[str, Any]:
    """The queries of ``sql/examples/``: name, description (their leading comment), parameters and SQL."""
    return {"examples": examples()}


def examples() -> list[dict[str, Any]]:
    from lakeml.resources import data_dir

    out = []
    folder = data_dir("sql") / "examples"
    for path in sorted(folder.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        lead = []
        for line in text.splitlines():
            if not line.startswith("--"):
                break
            lead.append(line[2:].strip())
        params = list(dict.fromkeys(re.findall(r"\$([A-Za-z_]\w*)", text)))
        out.append({"name": path.stem, "description": " ".join(lead), "params": params, "sql": text})
    return out
