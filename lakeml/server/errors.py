"""Errors as JSON. lakeml's own routes answer ``{"error": {"type", "message", "field"}}``; MLflow's
routes (``/api/2.0/mlflow*``, ``/ajax-api/``) answer MLflow's ``{"error_code", "message"}``. Never a 500
for bad input: every :class:`~lakeml.errors.LakemlError` maps to a 4xx (storage failures to 503)."""

from __future__ import annotations

from typing import Any

from lakeml import errors as E

# (lakeml error class, HTTP status, MLflow error_code); the first match wins, so children come first
_MAP: list[tuple[type, int, str]] = [
    (E.GateError, 409, "INVALID_STATE"),
    (E.ReadOnlyError, 403, "PERMISSION_DENIED"),
    (E.RoleError, 403, "PERMISSION_DENIED"),
    (E.QueryError, 400, "INVALID_PARAMETER_VALUE"),
    (E.InvalidInputError, 400, "INVALID_PARAMETER_VALUE"),
    (E.NotFoundError, 404, "RESOURCE_DOES_NOT_EXIST"),
    (E.ConflictError, 409, "INVALID_PARAMETER_VALUE"),
    (E.ConfigError, 400, "INVALID_PARAMETER_VALUE"),
    (E.StorageError, 503, "TEMPORARILY_UNAVAILABLE"),
    (E.LakemlError, 400, "INVALID_PARAMETER_VALUE"),
]

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/", "/api/2.0/mlflow-artifacts")


class ApiError(Exception):
    """An HTTP error raised by a route: status, an MLflow-style code, a message and the field at fault."""

    def __init__(self, status: int, message: str, *, code: str = "INVALID_PARAMETER_VALUE", field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def classify(exc: BaseException) -> tuple[int, str]:
    """HTTP status and MLflow error_code of a lakeml error."""
    for cls, status, code in _MAP:
        if isinstance(exc, cls):
            # MLflow says RESOURCE_ALREADY_EXISTS for duplicate names; keep its code where the message says so
            if cls is E.ConflictError and "already exists" in str(exc):
                return status, "RESOURCE_ALREADY_EXISTS"
            return status, code
    return 500, "INTERNAL_ERROR"


def is_mlflow_path(path: str) -> bool:
    return path.startswith(MLFLOW_PREFIXES)


def body(path: str, status: int, code: str, message: str, field: str | None = None,
         type_: str | None = None) -> dict[str, Any]:
    """The JSON error body for a request path."""
    if is_mlflow_path(path):
        return {"error_code": code, "message": message}
    err: dict[str, Any] = {"type": type_ or code, "code": code, "message": message}
    if field:
        err["field"] = field
    return {"error": err}
