"""The scoring service of ``lakeml models serve``: a FastAPI app separate from ``lakeml server``.

``POST /invocations`` (MLflow's scoring protocol, see :mod:`lakeml.serving.protocol`) answers
``{"predictions": [...]}``; ``GET /health`` (and ``/ping``), ``/version``, ``/metadata`` and the
Prometheus ``/metrics``. Every response carries ``X-Request-Id`` (the client's, or a new one) and
``X-Model-Version``. :func:`build` assembles the app from :class:`ServeOptions`; :func:`serve` runs it
with uvicorn: see :mod:`lakeml.server.serving`, which opens the lake (this module never imports
``lakeml.client``).
"""

import contextlib
import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from lakeml.errors import GateError, InvalidInputError

log = logging.getLogger("lakeml.serving")

OPTIONS_ENV = "LAKEML_SERVE_OPTIONS"  # the options, as JSON, for worker processes
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass
class ServeOptions:
    """What ``lakeml models serve`` was started with (JSON-able, handed to worker processes)."""

    model_uri: str | None = None  # a model of the lake (models:/NAME@ALIAS ...), or
    folder: str | None = None  # a folder written by `lakeml models package`
    catalog: str | None = None
    warehouse: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_predictions: bool = True
    follow_alias: bool = False
    poll_interval: float = 10.0
    max_rows: int = 10_000
    service: str = "lakeml-serve"
    service_version: str | None = None
    environment: str | None = None  # record the deployment in this environment
    commit_interval: float = 5.0  # seconds between commits of the logged predictions (fewer, larger files)
    properties: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeOptions":
        return cls(**json.loads(text))


class Service:
    """Everything one worker holds: the lake (if any), the served model, the logger and the metrics."""

    def __init__(self, opts: ServeOptions, *, lake: Any = None, record: bool = True,
                 on_close: Any = None, log_process: Any = None):
        from lakeml.serving.model import FolderSource, LakeSource, ServedModel
        from lakeml.serving.predlog import PredictionLogger

        self.opts = opts
        self.on_close = on_close  # e.g. closing the lake the caller opened for this service
        self.lake = lake
        if self.lake is None and (opts.folder is None or opts.log_predictions):
            raise InvalidInputError("serving a model of the lake, or logging predictions, needs an open lake "
                                    "(lakeml.server.serving opens it from the options)")
        self.metrics = Metrics()
        source = FolderSource(opts.folder) if opts.folder is not None else LakeSource(self.lake, opts.model_uri)
        if opts.follow_alias and source.alias is None:
            raise InvalidInputError(f"--follow-alias needs a models:/NAME@ALIAS URI; {source.uri} names no alias. "
                                    "Serve models:/NAME@ALIAS, or drop --follow-alias")
        self.served = ServedModel(source, on_swap=self._swapped, accept=self._accept, prepare=self._prepare)
        cur = self.served.current
        if opts.environment and record:
            self.record_deployment(cur)
        self.logger = None
        if opts.log_predictions:
            self.logger = PredictionLogger(self.lake, model_name=cur.name, model_version=cur.version,
                                           model_uri=opts.model_uri or cur.model_uri, service=opts.service,
                                           process=log_process)
        self.metrics.model_version.set(cur.version or 0)
        if opts.follow_alias:
            self.served.follow(opts.poll_interval)

    # -- deployments -----------------------------------------------------------------------------
    def record_deployment(self, model: Any) -> None:
        """Record that this service runs ``model`` in ``--environment`` (skipped when already current)."""
        if not (self.opts.environment and self.lake is not None and model.name and model.version):
            return
        deps = self.lake.registry.deployments
        active = deps.list_deployments(model.name, environment=self.opts.environment)
        if any(d.version == model.version and d.service == self.opts.service
               and d.service_version == self.opts.service_version for d in active):
            return
        deps.record_deployment(model.name, model.version, environment=self.opts.environment,
                               service=self.opts.service, service_version=self.opts.service_version)

    def _accept(self, version: int) -> None:
        name = self.served.current.name
        if self.opts.environment and self.lake is not None and name:
            fails = self.lake.registry.check_gates(name, version, environment=self.opts.environment)
            if fails:
                raise GateError(f"version {version} fails the gates of environment {self.opts.environment!r}: "
                                f"{'; '.join(fails)}", fails)

    def _swapped(self, old: Any, new: Any) -> None:
        if self.logger is not None:
            self.logger.set_model(model_name=new.name, model_version=new.version,
                                  model_uri=self.opts.model_uri or new.model_uri)
        self.metrics.model_version.set(new.version or 0)
        self.metrics.reloads.inc()

    def _prepare(self, new: Any) -> None:
        if self.opts.environment:  # recorded before the swap: the record never lags what is served
            self.record_deployment(new)

    def close(self) -> None:
        self.served.stop()
        if self.logger is not None:
            self.logger.close()
        if self.on_close is not None:
            self.on_close()


class Metrics:
    """The Prometheus metrics of one app (a registry of its own, so apps in one process do not clash)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("lakeml_serving_requests", "Scoring requests, by HTTP status", ["status"],
                                registry=self.registry)
        self.errors = Counter("lakeml_serving_errors", "Scoring requests that failed (status >= 400)",
                              registry=self.registry)
        self.rows = Counter("lakeml_serving_rows", "Input rows scored", registry=self.registry)
        self.latency = Histogram("lakeml_serving_request_latency_seconds", "Latency of POST /invocations",
                                 buckets=_BUCKETS, registry=self.registry)
        self.model_version = Gauge("lakeml_serving_model_version", "Model version being served",
                                   registry=self.registry)
        self.reloads = Counter("lakeml_serving_model_reloads", "Times a new version was swapped in",
                               registry=self.registry)
        # per-status children, made once (labels() costs a dict lookup and a lock per call)
        self._status: dict[int, Any] = {}

    def observe(self, status: int, seconds: float, rows: int) -> None:
        child = self._status.get(status)
        if child is None:
            child = self._status.setdefault(status, self.requests.labels(status=str(status)))
        child.inc()
        self.latency.observe(seconds)
        if status >= 400:
            self.errors.inc()
        elif rows:
            self.rows.inc(rows)


def _error_body(status: int, message: str) -> bytes:
    code = {400: "BAD_REQUEST", 413: "BAD_REQUEST", 415: "BAD_REQUEST"}.get(status, "INTERNAL_ERROR")
    return json.dumps({"error_code": code, "message": message}).encode()


class RequestIdMiddleware:
    """Plain ASGI middleware: take the client's ``X-Request-Id`` (when sane) or make one, put it in
    ``scope["state"]["request_id"]`` and on every response."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for k, v in scope.get("headers") or ():
            if k == b"x-request-id":
                text = v.decode("latin-1")
                rid = text if _REQUEST_ID.match(text) else None
                break
        if rid is None:
            rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        raw = rid.encode()

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", raw)]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(service: Service) -> Any:
    """The FastAPI app over one :class:`Service`."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from lakeml import __version__
    from lakeml.serving import protocol

    opts = service.opts
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        yield
        service.close()  # uvicorn has drained the requests: commit the logged predictions

    app = FastAPI(title="lakeml model service", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.service = service
    metrics = service.metrics

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        t0 = time.perf_counter()
        ts_us = time.time_ns() // 1000
        rid = request.scope["state"]["request_id"]
        model = service.served.current  # this request scores with this model, whatever swaps meanwhile
        body = await request.body()
        batch = x = out = None
        status, error, preds = 200, None, None
        try:
            batch = protocol.validate(protocol.parse(body, request.headers.get("content-type")), model.signature,
                                      max_rows=opts.max_rows)
            x = protocol.to_model_input(batch, model.signature, model.input_kind)
            try:
                out = model.predict(x)
            except (ValueError, TypeError) as e:
                raise InvalidInputError(f"the model rejected the input: {type(e).__name__}: {e}") from e
            preds = protocol.to_rows(out, len(batch))
            content = json.dumps({"predictions": preds}, default=str).encode()
        except InvalidInputError as e:
            status, error = 400, str(e)
        except Exception as e:  # noqa: BLE001 - answer 500 and keep serving
            log.exception("lakeml serve: request %s failed", rid)
            status, error = 500, f"{type(e).__name__}: {e}"
        if error is not None:
            content = _error_body(status, error)
        elapsed = time.perf_counter() - t0
        metrics.observe(status, elapsed, len(batch) if batch is not None else 0)
        if service.logger is not None:
            service.logger.log(rid, batch, preds, elapsed * 1000.0, status, error, ts_us=ts_us,
                               model_version=model.version, inputs=x, outputs=out)
        return Response(content, status_code=status, media_type="application/json",
                        headers={"X-Model-Version": str(model.version or "")})

    @app.get("/health")
    @app.get("/ping")
    def health() -> Any:
        cur = service.served.current
        return {"status": "ok", "model_uri": opts.model_uri or cur.model_uri, "model_version": cur.version}

    @app.get("/version")
    def version() -> Any:
        cur = service.served.current
        return {"lakeml": __version__, "model_name": cur.name, "model_version": cur.version,
                "service": opts.service, "service_version": opts.service_version}

    @app.get("/metadata")
    def metadata() -> Any:
        cur = service.served.current
        return {**cur.metadata(), "service": opts.service, "service_version": opts.service_version,
                "environment": opts.environment, "follow_alias": opts.follow_alias,
                "log_predictions": service.logger is not None, "max_rows": opts.max_rows,
                "reloads": service.served.reloads, "last_error": service.served.last_error}

    @app.get("/metrics")
    def prom() -> Any:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Any) -> Any:
        return JSONResponse({"error_code": "ENDPOINT_NOT_FOUND",
                             "message": f"no endpoint {request.method} {request.url.path}; POST /invocations "
                                        "scores, GET /health, /version, /metadata, /metrics"}, status_code=404)

    app.add_middleware(RequestIdMiddleware)
    return app
