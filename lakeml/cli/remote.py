"""``--server URL`` for the CLI's read commands: the same answers, asked of ``lakeml server`` over
``/api/v1`` with the standard library only (no pyarrow, polars, DuckDB or pyiceberg import), so
``lakeml runs list --server ...`` answers fast from a laptop that holds no storage credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_TIMES = ("start_time", "end_time", "created_at")


def _times(row: dict[str, Any]) -> dict[str, Any]:
    for k in _TIMES:
        if isinstance(row.get(k), str):
            try:
                row[k] = datetime.fromisoformat(row[k])
            except ValueError:
                pass
    return row


def sql_rows(http: Any, query: str, params: list | None = None) -> tuple[list[str], list[list[Any]]]:
    """``(column names, rows)`` of a read-only query on the server (``POST /api/v1/sql``)."""
    d = http.json("POST", "/api/v1/sql", json_body={"sql": query, "params": params, "format": "json"})
    return [c["name"] for c in d["columns"]], d["rows"]


def experiments(http: Any) -> list[dict[str, Any]]:
    """Rows of ``lakeml experiments list``."""
    exps = http.json("GET", "/api/v1/experiments")["experiments"]
    counts: dict[str, int] = {}
    if exps:
        _, rows = sql_rows(http, "SELECT experiment_id, count(DISTINCT run_id) AS n FROM lakeml.runs GROUP BY 1")
        counts = {r[0]: r[1] for r in rows}
    return [_times({"experiment_id": e["experiment_id"], "name": e["name"], "runs": counts.get(e["experiment_id"], 0),
                    "created_at": e.get("created_at"), "artifact_location": e.get("artifact_location"),
                    "tags": e.get("tags") or {}}) for e in exps]


def runs(http: Any, experiments: list[str], filter_string: str | None, order_by: list[str],
         limit: int) -> list[dict[str, Any]]:
    """Rows of ``lakeml runs list`` (flat: params./metrics./tags. columns)."""
    d = http.json("POST", "/api/v1/runs/search", json_body={
        "experiment_names": experiments or None, "filter": filter_string, "order_by": order_by or None,
        "max_results": limit})
    return [_times(r) for r in d["runs"]]


def run_details(http: Any, run_id: str) -> tuple[Any, list[Any], dict[str, int]]:
    """``(Run, artifact files, metric point counts)`` of ``lakeml runs show``."""
    from lakeml.entities import ArtifactInfo
    from lakeml.remote.lake import _run

    run = _run(http.json("GET", f"/api/v1/runs/{run_id}"))
    files: list[Any] = []
    todo = [""]
    while todo:
        path = todo.pop()
        for f in http.json("GET", f"/api/v1/artifacts/{run_id}", params={"path": path})["files"]:
            if f["is_dir"]:
                todo.append(f["path"])
            else:
                files.append(ArtifactInfo(**f))
    _, rows = sql_rows(http, "SELECT key, count(*) AS n FROM lakeml.metrics WHERE run_id = $1 GROUP BY 1", [run_id])
    return run, sorted(files, key=lambda a: a.path), {r[0]: r[1] for r in rows}
