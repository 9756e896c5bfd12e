"""lakeml errors as :class:`mlflow.exceptions.MlflowException`, with MLflow's error codes."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from lakeml import errors as E

F = TypeVar("F", bound=Callable[..., Any])

# (lakeml error class, MLflow error code); the first match wins, so children come first
_CODES: list[tuple[type, str]] = [
    (E.GateError, "INVALID_STATE"),
    (E.ReadOnlyError, "PERMISSION_DENIED"),
    (E.InvalidInputError, "INVALID_PARAMETER_VALUE"),
    (E.QueryError, "INVALID_PARAMETER_VALUE"),
    (E.NotFoundError, "RESOURCE_DOES_NOT_EXIST"),
    (E.ConflictError, "INVALID_PARAMETER_VALUE"),
    (E.StorageError, "TEMPORARILY_UNAVAILABLE"),
    (E.LakemlError, "INVALID_PARAMETER_VALUE"),
]


def mlflow_error(exc: BaseException) -> Exception:
    """The MlflowException for a lakeml error (``already exists`` -> RESOURCE_ALREADY_EXISTS)."""
    from mlflow.exceptions import MlflowException

    code = next(c for cls, c in _CODES if isinstance(exc, cls))
    if isinstance(exc, E.ConflictError) and not isinstance(exc, E.GateError) and "already exists" in str(exc):
        code = "RESOURCE_ALREADY_EXISTS"
    return MlflowException(str(exc), error_code=_code(code))


def unsupported(what: str, why: str) -> Exception:
    """An MlflowException for a store method lakeml does not offer (the message says why)."""
    from mlflow.exceptions import MlflowException

    return MlflowException(f"{what} is not supported by the lakeml:// store: {why}",
                           error_code=_code("INVALID_PARAMETER_VALUE"))


def _code(name: str) -> int:
    """MLflow's error code number for its name (MlflowException takes the proto enum value)."""
    from mlflow.protos.databricks_pb2 import ErrorCode

    return ErrorCode.Value(name)


def translated(fn: F) -> F:
    """Re-raise lakeml errors from ``fn`` as MlflowExceptions (the cause is kept)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except E.LakemlError as e:
            raise mlflow_error(e) from e
    return wrapper  # type: ignore[return-value]
