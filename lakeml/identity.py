"""Who is acting: the OS user by default, or the caller a server request runs for.

``lakeml server`` runs each request inside ``acting_as(token_name)``; run events and registry
changes then record that name as their ``user``/``actor`` (a :mod:`contextvars` variable, so it
follows the request into worker threads and never leaks between requests).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_acting_user: ContextVar[str | None] = ContextVar("lakeml_acting_user", default=None)


def acting_user() -> str | None:
    """The user set by :func:`acting_as` in this context, or None."""
    return _acting_user.get()


@contextmanager
def acting_as(user: str | None) -> Iterator[None]:
    """Record writes made inside the block as ``user`` (None: leave the OS user)."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)


def set_acting_user(user: str | None) -> None:
    """Set the acting user for the rest of this context (a request's task or thread)."""
    _acting_user.set(user)


_run_source: ContextVar[tuple[str | None, str | None] | None] = ContextVar("lakeml_run_source", default=None)


def run_source() -> tuple[str | None, str | None]:
    """The entry point and git commit a server request declared for the run it creates (or Nones)."""
    return _run_source.get() or (None, None)


@contextmanager
def declaring_source(source: str | None, git_commit: str | None) -> Iterator[None]:
    """Runs created inside the block record ``source``/``git_commit`` (the client's, e.g. MLflow's
    ``mlflow.source.name`` tag) instead of the serving process's own, which are not the run's."""
    token = _run_source.set((source, git_commit))
    try:
        yield
    finally:
        _run_source.reset(token)
