"""A tiny HTTP client for ``lakeml server`` on the standard library (no pyarrow, polars or httpx).

Errors of ``/api/v1`` (``{"error": {"type", "message", "field"}}``) come back as the lakeml error they
were on the server (``NotFoundError`` for a 404, ``ConflictError`` for a 409...); a server that cannot be
reached (or answers 502/503/504) raises :class:`Unreachable`, which the remote client retries.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable

from lakeml import errors as E

TOKEN_ENV = "LAKEML_TRACKING_TOKEN"
URI_ENV = "LAKEML_TRACKING_URI"
ARROW = "application/vnd.apache.arrow.stream"
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class Unreachable(E.StorageError):
    """The server did not answer (connection refused, timeout) or answered that it is unavailable."""


class AccessDenied(E.LakemlError, PermissionError):
    """The server refused the token (401: missing or bad; 403: too small a scope)."""


_TYPES: dict[str, type] = {
    "NotFoundError": E.NotFoundError, "ConflictError": E.ConflictError, "GateError": E.GateError,
    "InvalidInputError": E.InvalidInputError, "QueryError": E.QueryError, "ReadOnlyError": E.ReadOnlyError,
    "ConfigError": E.ConfigError, "StorageError": E.StorageError, "CommitError": E.CommitError,
}
_STATUS: dict[int, type] = {400: E.InvalidInputError, 404: E.NotFoundError, 409: E.ConflictError,
                            413: E.InvalidInputError, 415: E.InvalidInputError, 422: E.InvalidInputError}


def is_remote_uri(uri: Any) -> bool:
    return isinstance(uri, str) and uri.lower().startswith(("http://", "https://"))


def error_for(status: int, body: bytes, what: str) -> Exception:
    """The lakeml error an error answer stands for."""
    message, typ = None, None
    try:
        data = json.loads(body or b"{}")
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            message, typ = err.get("message"), err.get("type")
        elif isinstance(data, dict) and "message" in data:
            message = data.get("message")
        elif isinstance(data, dict) and "detail" in data:
            message = str(data["detail"])
    except ValueError:
        message = body[:300].decode("utf-8", "replace") if body else None
    message = message or f"HTTP {status}"
    if status in (401, 403):
        return AccessDenied(f"{what}: {message} (set LAKEML_TRACKING_TOKEN or pass token= to lakeml.connect)")
    if status in RETRYABLE:
        return Unreachable(f"{what}: the server answered {status}: {message}")
    cls = _TYPES.get(typ or "") or _STATUS.get(status) or E.LakemlError
    return cls(message)


class Http:
    """Requests to one server, with its token (``Authorization: Bearer``)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0):
        if not is_remote_uri(url):
            raise E.InvalidInputError(f"server address {url!r} must start with http:// or https://, "
                                      "e.g. http://127.0.0.1:5000")
        self.url = url.rstrip("/")
        self.token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Http({self.url!r})"

    def request(self, method: str, path: str, *, json_body: Any = None, body: bytes | Iterable[bytes] | None = None,
                content_type: str | None = None, headers: dict[str, str] | None = None,
                params: dict[str, Any] | None = None, accept: str | None = None,
                timeout: float | None = None, stream: bool = False) -> tuple[int, dict[str, str], Any]:
        """``(status, headers, body bytes)`` of a 2xx answer (``stream``: the open response); raises otherwise."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode([(k, x) for k, v in params.items() if v is not None
                                                 for x in (v if isinstance(v, (list, tuple)) else [v])])
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            hdrs["Content-Type"] = content_type
        if accept:
            hdrs["Accept"] = accept
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
        what = f"{method} {path}"
        try:
            resp = urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            data = e.read()
            raise error_for(e.code, data, what) from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable(f"lakeml server {self.url} did not answer {what} ({type(reason).__name__}: "
                              f"{reason}); is it running? (lakeml server --port ...)") from None
        if stream:
            return resp.status, dict(resp.headers), resp
        with resp:
            try:
                data = resp.read()
            except (OSError, TimeoutError) as e:
                raise Unreachable(f"lakeml server {self.url} broke off its answer to {what}: {e}") from None
            return resp.status, dict(resp.headers), data

    def json(self, method: str, path: str, **kw: Any) -> Any:
        _, _, data = self.request(method, path, **kw)
        return json.loads(data) if data else None
