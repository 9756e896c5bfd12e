"""MLflow's JSON endpoints: one table of (path, methods, handler, scope), served under both prefixes."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Mapping

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lakeml.server.deps import lake_of, require
from lakeml.mlflow_compat.service import RAW_BODY
from lakeml.server.errors import ApiError

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")

# (path, methods, component, method name, scope); component: tracking, registry or models
ENDPOINTS: list[tuple[str, tuple[str, ...], str, str, str]] = [
    ("/experiments/create", ("POST",), "tracking", "create_experiment", "write"),
    ("/experiments/get", ("GET",), "tracking", "get_experiment", "read"),
    ("/experiments/get-by-name", ("GET",), "tracking", "get_experiment_by_name", "read"),
    ("/experiments/search", ("GET", "POST"), "tracking", "search_experiments", "read"),
    ("/runs/create", ("POST",), "tracking", "create_run", "write"),
    ("/runs/update", ("POST",), "tracking", "update_run", "write"),
    ("/runs/get", ("GET",), "tracking", "get_run", "read"),
    ("/runs/search", ("POST",), "tracking", "search_runs", "read"),
    ("/runs/log-batch", ("POST",), "tracking", "log_batch", "write"),
    ("/runs/log-metric", ("POST",), "tracking", "log_metric", "write"),
    ("/runs/log-parameter", ("POST",), "tracking", "log_param", "write"),
    ("/runs/set-tag", ("POST",), "tracking", "set_tag", "write"),
    ("/runs/delete-tag", ("POST",), "tracking", "delete_tag", "write"),
    ("/runs/log-inputs", ("POST",), "tracking", "log_inputs", "write"),
    ("/runs/outputs", ("POST",), "models", "log_outputs", "write"),
    ("/runs/log-model", ("POST",), "models", "log_model_history", "write"),
    ("/metrics/get-history", ("GET",), "tracking", "get_metric_history", "read"),
    ("/artifacts/list", ("GET",), "models", "list_run_artifacts", "read"),
    # MLflow 3 logged models (mlflow.<flavor>.log_model)
    ("/logged-models", ("POST",), "models", "create", "write"),
    ("/logged-models/search", ("POST",), "models", "search", "read"),
    ("/logged-models/{model_id}", ("GET",), "models", "get", "read"),
    ("/logged-models/{model_id}", ("PATCH",), "models", "finalize", "write"),
    ("/logged-models/{model_id}", ("DELETE",), "models", "delete", "write"),
    ("/logged-models/{model_id}/tags", ("PATCH",), "models", "set_tags", "write"),
    ("/logged-models/{model_id}/tags/{tag_key}", ("DELETE",), "models", "delete_tag", "write"),
    ("/logged-models/{model_id}/params", ("POST",), "models", "log_params", "write"),
    # model registry
    ("/registered-models/create", ("POST",), "registry", "create_registered_model", "write"),
    ("/registered-models/get", ("GET",), "registry", "get_registered_model", "read"),
    ("/registered-models/update", ("PATCH",), "registry", "update_registered_model", "write"),
    ("/registered-models/search", ("GET",), "registry", "search_registered_models", "read"),
    ("/registered-models/set-tag", ("POST",), "registry", "set_registered_model_tag", "write"),
    ("/registered-models/delete-tag", ("DELETE",), "registry", "delete_registered_model_tag", "write"),
    ("/registered-models/get-latest-versions", ("GET", "POST"), "registry", "get_latest_versions", "read"),
    ("/registered-models/alias", ("POST",), "registry", "set_alias", "write"),
    ("/registered-models/alias", ("DELETE",), "registry", "delete_alias", "write"),
    ("/registered-models/alias", ("GET",), "registry", "get_by_alias", "read"),
    ("/model-versions/create", ("POST",), "registry", "create_model_version", "write"),
    ("/model-versions/get", ("GET",), "registry", "get_model_version", "read"),
    ("/model-versions/update", ("PATCH",), "registry", "update_model_version", "write"),
    ("/model-versions/search", ("GET",), "registry", "search_model_versions", "read"),
    ("/model-versions/set-tag", ("POST",), "registry", "set_model_version_tag", "write"),
    ("/model-versions/delete-tag", ("DELETE",), "registry", "delete_model_version_tag", "write"),
    ("/model-versions/get-download-uri", ("GET",), "registry", "get_model_version_download_uri", "read"),
]

router = APIRouter(tags=["mlflow"])
fallback = APIRouter(include_in_schema=False)
_lock = threading.Lock()


class Services:
    """The MLflow services of one app (made on first use, shared by every request)."""

    def __init__(self, app_state: Any, lake: Any):
        from lakeml.mlflow_compat.artifacts import ArtifactProxy
        from lakeml.mlflow_compat.registry import MlflowRegistry
        from lakeml.mlflow_compat.service import MlflowTracking
        from lakeml.mlflow_compat.models import MlflowModels

        self.lake = lake
        self.proxy = ArtifactProxy(lake)
        self.tracking = MlflowTracking(lake, durable=lambda add, key=None: _durable(app_state, lake, add, key))
        self.models = MlflowModels(lake, self.proxy, self.tracking)
        self.registry = MlflowRegistry(lake, to_proxy=self.proxy.to_proxy_uri, from_proxy=self._from_proxy,
                                       logged_models=self.models.store)

    def _from_proxy(self, uri: str) -> tuple[str | None, str]:
        from lakeml.mlflow_compat.convert import PROXY_SCHEME

        place = self.proxy.place(uri[len(PROXY_SCHEME):].lstrip("/"))
        return place.run_id, place.uri

    @classmethod
    def of(cls, request: Request) -> "Services":
        state = request.app.state
        svc = getattr(state, "mlflow_services", None)
        lake = lake_of(request)
        if svc is None or svc.lake is not lake:
            with _lock:
                svc = getattr(state, "mlflow_services", None)
                if svc is None or svc.lake is not lake:
                    svc = state.mlflow_services = cls(state, lake)
        return svc


def _durable(app_state: Any, lake: Any, add: Callable[[], Any], key: str | None = None) -> Any:
    """Buffer rows with ``add`` and return once they are safe against kill -9 (one grouped fsync of the
    spool for every request waiting at that moment: /api/v1's door, :mod:`lakeml.server.api_v1.ingest`).
    ``key``: an idempotency key; a write whose key was accepted before (also before a restart) is skipped."""
    from lakeml.identity import acting_user
    from lakeml.server.api_v1.ingest import Ingest

    out: list[Any] = []

    def do(_: Any) -> int:
        out.append(add())
        return 0

    Ingest.of(app_state, lake).write(key, False, acting_user(), "mlflow", lambda: None, do, atomic=key is not None)
    return out[0] if out else None


def loads(body: bytes) -> Any:
    """JSON ``body`` parsed by orjson (4x faster on a 1000-metric log-batch), or by :func:`json.loads` for what
    orjson refuses but Python's json takes (NaN and Infinity tokens, integers beyond 64 bits)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def request_dict(query: Any, path_params: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """The request as MLflow's server reads it: query parameters (repeated ones as lists), then the JSON body.
    The raw body rides along under :data:`RAW_BODY` (MLflow log-batch's idempotency key is its digest)."""
    req: dict[str, Any] = {}
    for key in query.keys():
        vals = query.getlist(key)
        req[key] = vals if len(vals) > 1 or key in ("experiment_ids", "order_by", "stages") else vals[0]
    if body.strip():
        try:
            data = loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"request body is not valid JSON: {e}", field="body") from None
        if not isinstance(data, dict):
            raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}", field="body")
        req.update(data)
    req.update(path_params)
    req[RAW_BODY] = body
    return req


def _make(component: str, method: str) -> Callable:
    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()
        svc = Services.of(request)
        fn = getattr(getattr(svc, component), method)

        def run() -> Any:  # parsing too runs in the thread pool: a 1000-metric body never stalls the event loop
            return fn(request_dict(request.query_params, request.path_params, body))

        try:
            return JSONResponse(await run_in_threadpool(run))
        except (TypeError, ValueError, KeyError, AttributeError) as e:  # a value of the wrong JSON type
            from lakeml.errors import LakemlError

            if isinstance(e, (LakemlError, ApiError)):
                raise
            raise ApiError(400, f"invalid request for {request.url.path}: {type(e).__name__}: {e}") from e

    endpoint.__name__ = f"mlflow_{component}_{method}"
    return endpoint


for _prefix in PREFIXES:
    for _path, _methods, _component, _method, _scope in ENDPOINTS:
        router.add_api_route(_prefix + _path, _make(_component, _method), methods=list(_methods),
                             dependencies=[Depends(require(_scope))], include_in_schema=_prefix == PREFIXES[0],
                             name=f"{_component}.{_method}{'' if _prefix == PREFIXES[0] else '.ajax'}")


@fallback.api_route("/api/3.0/mlflow/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
@fallback.api_route("/ajax-api/3.0/mlflow/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
@fallback.api_route("/api/2.0/mlflow/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
@fallback.api_route("/ajax-api/2.0/mlflow/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
def not_supported(request: Request, rest: str) -> JSONResponse:
    """Any other MLflow endpoint: MLflow's ENDPOINT_NOT_FOUND (traces, prompts, webhooks... are not served)."""
    return JSONResponse({"error_code": "ENDPOINT_NOT_FOUND",
                         "message": f"{request.method} {request.url.path} is not supported by lakeml server's MLflow "
                                    "API; see docs/mlflow.md for what is"}, status_code=404)
