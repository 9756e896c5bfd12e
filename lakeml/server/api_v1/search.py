"""Run search and metric history: ``GET /api/v1/runs``, ``POST /api/v1/runs/search``,
``GET /api/v1/runs/{run_id}/metrics/history``. JSON by default; Arrow IPC with ``format=arrow`` or
``Accept: application/vnd.apache.arrow.stream``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from lakeml import validation as v
from lakeml.errors import InvalidInputError, QueryError
from lakeml.server.api_v1.common import (arrow_response, decode_page_token, encode_page_token, table_rows,
                                         wants_arrow)
from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.errors import ApiError

router = APIRouter(tags=["search"])

MAX_RESULTS = 50_000


class SearchIn(BaseModel):
    experiment_names: list[str] | None = Field(None, description="default: every experiment")
    filter: str | None = Field(None, description="MLflow filter syntax, e.g. "
                                                 "\"metrics.loss < 0.2 and params.lr = '0.1'\"")
    order_by: list[str] | None = Field(None, description="e.g. [\"metrics.loss ASC\", \"start_time DESC\"]")
    max_results: int = Field(1000, ge=1, le=MAX_RESULTS)
    page_token: str | None = None
    format: str | None = Field(None, description="json (default) or arrow")


def _search(request: Request, body: SearchIn) -> Any:
    lake = lake_of(request)
    offset = decode_page_token(body.page_token)
    try:
        df = lake.search_runs(body.experiment_names, body.filter, body.order_by, body.max_results + 1, offset)
    except (InvalidInputError, QueryError) as e:
        field = "order_by" if "order" in str(e).lower() and body.order_by else "filter"
        raise ApiError(400, str(e), field=field) from None
    more = df.height > body.max_results
    df = df.head(body.max_results)
    token = encode_page_token(offset + body.max_results) if more else None
    table = df.to_arrow()
    if wants_arrow(request, body.format):
        resp = arrow_response(table)
        if token:
            resp.headers["X-Lakeml-Next-Page-Token"] = token
        return resp
    return {"runs": table_rows(table), "next_page_token": token}


@router.get("/runs")
def search_runs_get(request: Request, experiment: list[str] | None = Query(None), filter: str | None = None,
                    order_by: list[str] | None = Query(None), max_results: int = Query(1000, ge=1, le=MAX_RESULTS),
                    page_token: str | None = None, format: str | None = None,
                    _: Principal = Depends(require("read"))) -> Any:
    """Runs matching a filter: rows with run columns and ``params.*``, ``metrics.*``, ``tags.*``; pages via
    ``next_page_token``."""
    return _search(request, SearchIn(experiment_names=experiment, filter=filter, order_by=order_by,
                                     max_results=max_results, page_token=page_token, format=format))


@router.post("/runs/search")
def search_runs(body: SearchIn, request: Request, _: Principal = Depends(require("read"))) -> Any:
    """The same as ``GET /api/v1/runs``, with the query as a JSON body."""
    return _search(request, body)


@router.get("/runs/{run_id}/metrics/history")
def metric_history(run_id: str, request: Request, key: str | None = None, format: str | None = None,
                   _: Principal = Depends(require("read"))) -> Any:
    """Every point of metric ``key`` (or of all metrics) of a run, ordered by key and step."""
    try:
        v.validate_run_id(run_id)
    except ValueError as e:
        raise ApiError(400, str(e), field="run_id") from None
    if key is not None:
        try:
            v.validate_key(key, "metric")
        except ValueError as e:
            raise ApiError(400, str(e), field="key") from None
    lake = lake_of(request)
    lake.tracking.run_state(run_id)  # 404 for an unknown run
    table = lake.get_metric_history(run_id, key).to_arrow()
    if wants_arrow(request, format):
        return arrow_response(table)
    return {"run_id": run_id, "metrics": table_rows(table)}
