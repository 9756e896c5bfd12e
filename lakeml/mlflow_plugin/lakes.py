"""One :class:`~lakeml.client.lake.Lake` per ``lakeml://`` URI per process.

MLflow builds a store for each client (and caches them per URI); they all share the lake of their
URI here, so a process has one committer and one warm query engine per lake. At exit, lakeml's
committers commit what they hold themselves (``lakeml.storage.committer``: a threading exit hook
that runs while pyiceberg can still write; an ``atexit`` handler would run too late).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs, unquote, urlparse

from lakeml.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.client.lake import Lake

SCHEME = "lakeml"

_lakes: dict["LakeUri", "Lake"] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class LakeUri:
    """A parsed ``lakeml://`` URI: a warehouse folder or a catalog profile name, and a namespace."""

    warehouse: str | None = None
    catalog: str | None = None
    namespace: str | None = None

    @classmethod
    def parse(cls, uri: str) -> "LakeUri":
        """``lakeml:///abs/path`` (an embedded warehouse) or ``lakeml://<catalog>`` (a pyiceberg profile)."""
        if not isinstance(uri, str) or not uri.startswith(f"{SCHEME}:"):
            raise ConfigError(f"{uri!r} is not a lakeml URI; use lakeml:///abs/path/to/warehouse or "
                              "lakeml://<catalog name>")
        p = urlparse(uri)
        query = parse_qs(p.query)
        unknown = set(query) - {"namespace"}
        if unknown:
            raise ConfigError(f"unknown option(s) {sorted(unknown)} in {uri!r}; the only one is ?namespace=<ns>")
        namespace = query["namespace"][-1] if "namespace" in query else None
        if p.netloc and p.path not in ("", "/"):
            raise ConfigError(f"{uri!r} names both a catalog ({p.netloc!r}) and a path; use lakeml:///abs/path "
                              "for a warehouse folder (three slashes) or lakeml://<catalog name>")
        if p.netloc:
            return cls(catalog=unquote(p.netloc), namespace=namespace)
        if not p.path or p.path == "/":
            raise ConfigError(f"{uri!r} names no lake; use lakeml:///abs/path/to/warehouse or lakeml://<catalog>")
        return cls(warehouse=unquote(p.path), namespace=namespace)

    def connect(self) -> "Lake":
        from lakeml.client.lake import connect

        if self.catalog:
            return connect(self.catalog, namespace=self.namespace)
        return connect(warehouse=self.warehouse, namespace=self.namespace)


def lake_for(uri: str) -> "Lake":
    """The process's lake for ``uri`` (opened on first use, shared by every store of that URI)."""
    key = LakeUri.parse(uri)
    lake = _lakes.get(key)
    if lake is None:
        with _lock:
            lake = _lakes.get(key)
            if lake is None:
                lake = _lakes[key] = key.connect()
    return lake


def close(uri: str) -> None:
    """Flush and close the lake of ``uri`` if this process opened one (stores built on it stop working)."""
    with _lock:
        lake = _lakes.pop(LakeUri.parse(uri), None)
    if lake is not None:
        lake.close()


def close_all() -> None:
    """Flush and close every lake opened through a ``lakeml://`` URI (the next use opens them again)."""
    with _lock:
        lakes = list(_lakes.values())
        _lakes.clear()
    for lake in lakes:
        lake.close()



def reads(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For a store method that reads: first commit this process's pending rows with ``lake.flush()``.

    Every lakeml read does this itself when it sees pending rows, but rows that a background take is
    spooling are in neither the buffers nor the pending list for that moment, so such a read can
    miss a run created just before. ``flush()`` waits for that take (it holds the committer's locks)
    and costs nothing when nothing is pending.
    """
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.lake.flush()
        return fn(self, *args, **kwargs)
    return wrapper
