"""The lakeml error hierarchy: one root, typed children.

Input errors also subclass ``ValueError`` and lookups ``LookupError``, so both
``except LakemlError`` and the builtin forms work. Every message says what was
wrong and how to fix it.
"""

from __future__ import annotations

from lakeml.masking import mask_secrets


class LakemlError(Exception):
    """Root of every error lakeml raises on purpose. Its message never shows a secret:
    URI passwords and ``password=``-style values are masked (:func:`lakeml.masking.mask_secrets`)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_secrets(a) if isinstance(a, str) else a for a in args))


class InvalidInputError(LakemlError, ValueError):
    """A caller passed a bad name, value or path."""


class NotFoundError(LakemlError, LookupError):
    """A run, experiment, model, table or artifact does not exist."""


class ConflictError(LakemlError):
    """The request contradicts what is already stored (e.g. a param changed)."""


class StorageError(LakemlError, OSError):
    """The catalog or object store could not be reached or refused a write."""


class CommitError(StorageError):
    """A commit could not be made durable before the deadline ran out."""


class ConfigError(LakemlError):
    """The lakeml or pyiceberg configuration is missing or inconsistent."""


class MissingDependencyError(ConfigError, ImportError):
    """An optional package is needed; the message holds the pip command."""


class QueryError(LakemlError):
    """A SQL query failed (syntax, unknown table, type error...)."""


class ReadOnlyError(QueryError, PermissionError):
    """A read-only SQL session was asked to write or to leave the warehouse."""


class GateError(ConflictError):
    """A promotion was refused by the model's promotion gates."""

    def __init__(self, message: str, failures: list[str] | None = None):
        super().__init__(message)
        self.failures = list(failures or [])


class RoleError(LakemlError, PermissionError):
    """A user acted outside their role (e.g. completed a lifecycle task of another lane)."""
