"""The one ASGI middleware of ``lakeml server``: authentication, the acting user, body limits, metrics.

For each HTTP request, in order:

1. a body larger than the limit (``Content-Length``, then counted while it streams) gets a 413 naming
   the limit and the flag that sets it (``--max-body``); paths of :data:`LARGE_BODY_PREFIXES` (artifact
   uploads) use ``max_artifact_bytes`` instead;
2. unless the path is public (:func:`lakeml.server.auth.is_public`), the credential is checked
   (401 JSON when missing or bad) and the caller is kept as ``request.state.principal``;
3. the app runs inside ``acting_as(principal.name)``, so every write of the request (also in the
   threadpool running sync endpoints) records the token's name as its user;
4. the request is counted in the app's metrics by route template and status.
"""

from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator

from lakeml.identity import acting_as
from lakeml.server.errors import ApiError, body as error_body

# Paths whose requests may be as large as ``ServerSettings.max_artifact_bytes`` (artifact uploads).
LARGE_BODY_PREFIXES: set[str] = {"/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/"}


def allow_large_bodies(prefix: str) -> None:
    """Let requests under ``prefix`` carry up to ``max_artifact_bytes`` (call at import of a router)."""
    LARGE_BODY_PREFIXES.add(prefix)


class BodyTooLarge(ApiError):
    """A request body over its limit (HTTP 413)."""

    def __init__(self, limit: int, flag: str):
        super().__init__(413, f"request body larger than the limit of {limit} bytes ({_human(limit)}); send less "
                              f"per request (e.g. smaller batches) or start the server with a larger {flag}",
                         code="REQUEST_TOO_LARGE", field="body")


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:g} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def body_limit(settings: Any, path: str) -> tuple[int, str]:
    """``(limit, flag that sets it)`` for a request to ``path``."""
    if any(path.startswith(p) for p in LARGE_BODY_PREFIXES):
        return settings.max_artifact_bytes, "--max-artifact (LAKEML_SERVER_MAX_ARTIFACT)"
    return settings.max_body_bytes, "--max-body (LAKEML_SERVER_MAX_BODY)"


async def iter_body(request: Any, limit: int | None = None) -> AsyncIterator[bytes]:
    """The body of ``request`` chunk by chunk, raising :class:`BodyTooLarge` once it passes ``limit``
    (default: ``max_artifact_bytes`` of the server): for routes that stream uploads to storage."""
    settings = request.app.state.settings
    limit = settings.max_artifact_bytes if limit is None else limit
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge(limit, "--max-artifact (LAKEML_SERVER_MAX_ARTIFACT)")
        yield chunk


class LakemlMiddleware:
    """See the module docstring. ``app_state``: the FastAPI app's ``state`` (auth, settings, metrics)."""

    def __init__(self, app: Any, app_state: Any):
        self.app = app
        self.state = app_state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from lakeml.server.auth import is_public
        from lakeml.server.deps import credential

        start = time.perf_counter()
        path = scope.get("path", "")
        status = [500]
        started = [False]
        limit, flag = body_limit(self.state.settings, path)
        too_large: list[BodyTooLarge] = []

        async def send_json(exc: ApiError) -> None:
            headers = [(b"content-type", b"application/json")]
            if exc.status == 401:
                headers.append((b"www-authenticate", b'Bearer realm="lakeml"'))
            payload = json.dumps(error_body(path, exc.status, exc.code, exc.message, exc.field)).encode()
            headers.append((b"content-length", str(len(payload)).encode()))
            status[0] = exc.status
            started[0] = True
            await send({"type": "http.response.start", "status": exc.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})

        try:
            length = _content_length(scope)
            if length is not None and length > limit:
                await send_json(BodyTooLarge(limit, flag))
                return
            principal = None
            if not is_public(path):
                from starlette.requests import Request

                request = Request(scope)
                auth = self.state.auth
                try:
                    cred = credential(request)
                    if getattr(auth, "may_block", lambda c: False)(cred):
                        import anyio.to_thread

                        principal = await anyio.to_thread.run_sync(auth.authenticate, cred)
                    else:
                        principal = auth.authenticate(cred)
                except ApiError as e:
                    await send_json(e)
                    return
                scope.setdefault("state", {})["principal"] = principal

            received = 0

            async def limited_receive() -> dict:
                nonlocal received
                message = await receive()
                if message.get("type") == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        err = BodyTooLarge(limit, flag)
                        too_large.append(err)
                        raise err
                return message

            async def watched_send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    if too_large:  # the app turned the limit into another error: answer 413 instead
                        await send_json(too_large[0])
                        return
                    status[0] = message["status"]
                    started[0] = True
                    # time spent in the server up to the response head (benchmarks read it: "at the server")
                    dur = f"app;dur={(time.perf_counter() - start) * 1000:.3f}".encode()
                    message = {**message, "headers": [*message.get("headers", []), (b"server-timing", dur)]}
                elif too_large and message["type"] == "http.response.body":
                    return
                await send(message)

            try:
                with acting_as(principal.name if principal is not None else None):
                    await self.app(scope, limited_receive, watched_send)
            except BodyTooLarge as e:
                if not started[0]:
                    await send_json(e)
                    return
                raise
        finally:
            metrics = getattr(self.state, "metrics", None)
            if metrics is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"  # templates only: bounded label values
                metrics.observe(scope.get("method", ""), template, status[0], time.perf_counter() - start)


def _content_length(scope: dict) -> int | None:
    for k, v in scope.get("headers") or ():
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None
