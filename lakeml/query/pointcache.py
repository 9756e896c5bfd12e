"""A process-wide cache of metric points per data file, indexed by run.

Iceberg data files never change, so once a file of ``lakeml.metrics`` has been read, the
points of any run in it are a slice of an in-memory Arrow table: a run's history costs
a dictionary lookup instead of a query. The cache is bounded (least recently used files
leave first): ``LAKEML_HISTORY_CACHE_MB`` (default 256; 0 turns it off). Files too large
for a quarter of it are never cached; the engine reads those with DuckDB.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

ENV_CACHE_MB = "LAKEML_HISTORY_CACHE_MB"
BYTES_PER_ROW = 48  # key, step, value, timestamp in Arrow, with a short key
SORT = [("key", "ascending"), ("step", "ascending"), ("timestamp", "ascending")]


@dataclass(frozen=True)
class FilePoints:
    """The points of one data file: ``key, step, value, timestamp`` ordered by run, key, step, timestamp."""

    table: Any  # pyarrow.Table
    runs: dict[str, tuple[int, int]]  # run id -> (offset, length) in ``table``
    nbytes: int

    def run(self, run_id: str):
        """The points of ``run_id`` (a zero-copy slice), or None."""
        span = self.runs.get(run_id)
        return None if span is None else self.table.slice(*span)


def index_points(tbl: Any) -> FilePoints:
    """Index a file's points (with ``run_id``) by run; sorts them first unless they already are."""
    import pyarrow.compute as pc

    if tbl.num_rows > 1 and not _is_sorted(tbl):
        tbl = tbl.sort_by([("run_id", "ascending")] + SORT)
    runs: dict[str, tuple[int, int]] = {}
    if tbl.num_rows:
        counts = pc.value_counts(tbl.column("run_id"))
        offset = 0  # Arrow's and DuckDB's string order (UTF-8 bytes) is Python's (code points)
        for rid, n in sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())):
            runs[rid] = (offset, n)
            offset += n
    points = tbl.drop_columns(["run_id"]).combine_chunks()
    return FilePoints(points, runs, points.nbytes)


def _is_sorted(tbl: Any) -> bool:
    """Whether rows are ordered by run_id, key, step, timestamp (compacted files are), vectorized."""
    import pyarrow.compute as pc

    ok = None
    for name in ("timestamp", "step", "key", "run_id"):  # innermost first
        col = tbl.column(name)
        a, b = col.slice(0, len(col) - 1), col.slice(1)
        if ok is None:
            ok = pc.less_equal(a, b)
        else:
            ok = pc.or_(pc.less(a, b), pc.and_(pc.equal(a, b), ok))
    return bool(pc.all(ok).as_py())


class PointCache:
    """Least-recently-used :class:`FilePoints` by data file path, bounded in bytes; thread-safe."""

    def __init__(self, max_bytes: int | None = None):
        if max_bytes is None:
            try:
                max_bytes = int(float(os.environ.get(ENV_CACHE_MB, "256")) * 1024 * 1024)
            except ValueError:
                max_bytes = 256 * 1024 * 1024
        self.max_bytes = max(0, max_bytes)
        self._files: OrderedDict[str, FilePoints] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def fits(self, records: int) -> bool:
        """Whether a file of ``records`` rows may be cached at all."""
        return records * BYTES_PER_ROW <= self.max_bytes // 4

    def get(self, path: str, load: Callable[[str], FilePoints]) -> FilePoints:
        """The points of ``path``, loaded with ``load(path)`` the first time."""
        with self._lock:
            got = self._files.get(path)
            if got is not None:
                self._files.move_to_end(path)
                return got
        got = load(path)
        with self._lock:
            if path not in self._files:
                self._files[path] = got
                self._bytes += got.nbytes
                while self._bytes > self.max_bytes and len(self._files) > 1:
                    _, old = self._files.popitem(last=False)
                    self._bytes -= old.nbytes
        return got

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._files)


POINTS = PointCache()


def combine(parts: list, key: str | None):
    """One run's points from its slices in several files, filtered to ``key``, in history order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tbl = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    if key is not None:
        tbl = tbl.filter(pc.equal(tbl.column("key"), key))
    return tbl.sort_by(SORT) if len(parts) > 1 else tbl
