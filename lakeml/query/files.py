"""The live data files of an Iceberg snapshot, with manifests cached by path.

Manifests are immutable, so each one is read once per process; a new snapshot
costs only its manifest list and its new manifests. The engine uses the file
list to keep in-memory copies of small tables up to date by adding only new
files, and to prune a run's metric history to the files that can hold it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataFileInfo:
    path: str
    records: int
    spec_id: int
    partition: tuple
    lower: dict  # field id -> raw lower bound bytes
    upper: dict


@dataclass(frozen=True)
class Listing:
    """Live files of one snapshot; ``has_deletes`` means a plain Parquet read would be wrong."""

    files: dict[str, DataFileInfo]
    has_deletes: bool


EMPTY = Listing({}, False)


class ManifestCache:
    """Entries of every manifest read so far, keyed by manifest path (shared by all tables)."""

    def __init__(self, max_manifests: int = 20_000):
        self._entries: dict[str, list[DataFileInfo]] = {}
        self._lock = threading.Lock()
        self._max = max_manifests

    def listing(self, tbl: Any, snapshot: Any = None) -> Listing:
        from pyiceberg.manifest import DataFileContent, ManifestContent

        snap = snapshot if snapshot is not None else tbl.current_snapshot()
        if snap is None:
            return EMPTY
        files: dict[str, DataFileInfo] = {}
        deletes = False
        for mf in snap.manifests(tbl.io):
            if mf.content != ManifestContent.DATA:
                if (mf.added_files_count or 0) + (mf.existing_files_count or 0) > 0:
                    deletes = True
                continue
            for info in self._read(tbl, mf, DataFileContent):
                if info is None:
                    deletes = True
                else:
                    files[info.path] = info
        return Listing(files, deletes)

    def _read(self, tbl: Any, mf: Any, DataFileContent: Any) -> list:
        with self._lock:
            got = self._entries.get(mf.manifest_path)
        if got is not None:
            return got
        out: list = []
        for e in mf.fetch_manifest_entry(tbl.io, discard_deleted=True):
            df = e.data_file
            if df.content != DataFileContent.DATA:
                out.append(None)
                continue
            out.append(DataFileInfo(df.file_path, df.record_count, df.spec_id or 0,
                                    tuple(df.partition) if df.partition is not None else (),
                                    dict(df.lower_bounds or {}), dict(df.upper_bounds or {})))
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[mf.manifest_path] = out
        return out


def appended_since(tbl: Any, since_id: int | None) -> list[str] | None:
    """Data files added by the snapshots after ``since_id`` up to the current one, if rows only grew.

    Every snapshot on the way must be an ``append`` or a ``replace`` (compaction, manifest
    rewrites: files change, rows do not, by the Iceberg spec). Then the rows of the current
    snapshot are the rows at ``since_id`` plus the files returned, even when a later compaction
    took those files out of the live set (they stay readable while their snapshot exists).
    None when ``since_id`` is not an ancestor still in the metadata, or rows were deleted or
    overwritten on the way.
    """
    from pyiceberg.manifest import ManifestContent, ManifestEntryStatus
    from pyiceberg.table.snapshots import Operation

    if since_id is None:
        return None
    chain = []
    snap = tbl.current_snapshot()
    while snap is not None and snap.snapshot_id != since_id:
        chain.append(snap)
        parent = snap.parent_snapshot_id
        snap = tbl.metadata.snapshot_by_id(parent) if parent is not None else None
    if snap is None:
        return None
    added: list[str] = []
    for s in reversed(chain):
        op = s.summary.operation if s.summary is not None else None
        if op == Operation.REPLACE:
            continue
        if op != Operation.APPEND:
            return None
        for mf in s.manifests(tbl.io):
            if mf.added_snapshot_id != s.snapshot_id:
                continue
            if mf.content != ManifestContent.DATA:
                return None
            for e in mf.fetch_manifest_entry(tbl.io, discard_deleted=True):
                if e.status == ManifestEntryStatus.ADDED and e.snapshot_id == s.snapshot_id:
                    added.append(e.data_file.file_path)
    return added


def bucket_pruner(tbl: Any, column: str):
    """A function ``value -> (spec_id, position, bucket)`` for a bucket partition on ``column``, or None."""
    from pyiceberg.transforms import BucketTransform

    try:
        field = tbl.schema().find_field(column)
    except ValueError:
        return None
    spec = tbl.spec()
    for pos, pf in enumerate(spec.fields):
        if pf.source_id == field.field_id and isinstance(pf.transform, BucketTransform):
            fn = pf.transform.transform(field.field_type)
            return lambda value: (spec.spec_id, pos, fn(value))
    return None


def files_for(listing: Listing, field_id: int, value: str, pruner=None) -> list[str]:
    """Paths of the files whose partition and column bounds can hold ``column == value``."""
    want = pruner(value) if pruner is not None else None
    raw = value.encode("utf-8")
    out = []
    for f in listing.files.values():
        if want is not None and f.spec_id == want[0] and len(f.partition) > want[1] \
                and f.partition[want[1]] != want[2]:
            continue
        lo, hi = f.lower.get(field_id), f.upper.get(field_id)
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):  # bounds may be truncated,
            continue                                                         # but always lo <= min, hi >= max
        out.append(f.path)
    return out
