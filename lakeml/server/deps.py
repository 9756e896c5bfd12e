"""FastAPI dependencies shared by every router: the lake, and who is calling with which scopes.

Routes declare ``principal: Principal = Depends(require("write"))``. The credential is read from
``Authorization: Bearer <token>``, from basic auth with the token as the password (what MLflow clients
send from ``MLFLOW_TRACKING_TOKEN`` / ``MLFLOW_TRACKING_PASSWORD``), or from the ``lakeml_token``
cookie (the portal). ``app.state.auth`` (see :mod:`lakeml.server.auth`) checks it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Callable

from fastapi import Request

from lakeml.server.errors import ApiError

SCOPES = ("read", "write", "admin")  # each scope includes the ones before it
COOKIE = "lakeml_token"


@dataclass(frozen=True)
class Principal:
    """The caller: the token's name (recorded as ``user`` on writes), its scope and its roles."""

    name: str
    scope: str = "admin"
    roles: tuple[str, ...] = field(default_factory=tuple)
    token_id: str | None = None

    def allows(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


def lake_of(request: Request) -> Any:
    """The server's one :class:`~lakeml.client.lake.Lake`."""
    return request.app.state.lake


def credential(request: Request) -> str | None:
    """The token a request carries, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip()).decode("utf-8")
        except Exception:
            raise ApiError(401, "malformed basic auth header: expected base64 of 'user:token'",
                           code="UNAUTHENTICATED", field="Authorization") from None
        return decoded.partition(":")[2] or None
    return request.cookies.get(COOKIE) or None


def principal_of(request: Request) -> Principal:
    """Authenticate the request (cached on ``request.state``)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = request.app.state.auth.authenticate(credential(request))
    request.state.principal = principal
    return principal


def require(scope: str) -> Callable[[Request], Principal]:
    """A dependency that admits callers holding ``scope`` (401 without a valid token, 403 with too small a scope)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; one of {SCOPES}")

    def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if not principal.allows(scope):
            raise ApiError(403, f"token {principal.name!r} has scope {principal.scope!r}; this request needs "
                                f"{scope!r}", code="PERMISSION_DENIED")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency
