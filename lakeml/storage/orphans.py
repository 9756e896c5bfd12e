"""Orphan cleanup: delete the files under a table that no retained metadata references.

Only the table's ``data/`` and ``metadata/`` folders are looked at, and only files of the
kinds Iceberg writes there (Parquet data, Avro manifests and manifest lists, metadata JSON,
Puffin statistics). A file is deleted only when it is unreferenced *and* older than the
safety age: a writer may have written a data or manifest file that its commit, still in
flight, is about to reference, and a reader may still be scanning an expired snapshot.
Directory markers (the empty ``dir/`` objects pyarrow leaves on S3) are never touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from lakeml.storage.objectstore import filesystem, fs_path

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.table import Table

log = logging.getLogger("lakeml.maintenance")

_KINDS = {"data": (".parquet", ".orc", ".avro"),
          "metadata": (".avro", ".metadata.json", ".json", ".puffin", ".stats")}


@dataclass
class StoredFile:
    path: str  # inside the filesystem (no scheme)
    size: int
    mtime_ms: int | None


@dataclass
class OrphanResult:
    files_total: int = 0
    bytes_total: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    kept_young: int = 0
    failed: list[str] = field(default_factory=list)


def referenced(tbl: "Table") -> set[str]:
    """Every file the table's current metadata reaches, as filesystem paths."""
    md = tbl.metadata
    refs = {tbl.metadata_location}
    refs.update(e.metadata_file for e in md.metadata_log)
    refs.update(s.statistics_path for s in md.statistics)
    refs.update(getattr(s, "statistics_path", "") for s in getattr(md, "partition_statistics", []) or [])
    manifests: dict[str, Any] = {}
    for snap in md.snapshots:
        refs.add(snap.manifest_list)
        for mf in snap.manifests(tbl.io):
            manifests.setdefault(mf.manifest_path, mf)
    for path, mf in manifests.items():
        refs.add(path)
        for e in mf.fetch_manifest_entry(tbl.io, discard_deleted=True):
            refs.add(e.data_file.file_path)
    return {fs_path(r) for r in refs if r}


def list_files(tbl: "Table", props: dict[str, str]) -> list[StoredFile]:
    """The Iceberg-written files under the table's ``data/`` and ``metadata/`` folders."""
    from pyarrow import fs as pafs

    base = tbl.location().rstrip("/")
    fs, root = filesystem(base, props)
    out: list[StoredFile] = []
    for sub, suffixes in _KINDS.items():
        sel = pafs.FileSelector(f"{root}/{sub}", recursive=True, allow_not_found=True)
        for info in fs.get_file_info(sel):
            if info.type != pafs.FileType.File or info.path.endswith("/"):
                continue  # folders and S3 directory markers
            if not info.base_name.endswith(suffixes) or info.base_name.startswith("."):
                continue
            mtime = info.mtime_ns // 1_000_000 if info.mtime_ns is not None else None
            out.append(StoredFile(info.path, info.size or 0, mtime))
    return out


def remove_orphans(tbl: "Table", props: dict[str, str], *, older_than_ms: int, now_ms: int,
                   dry_run: bool = False, reload: Callable[[], "Table"] | None = None,
                   progress: Callable[[int], None] | None = None) -> OrphanResult:
    """Delete unreferenced files older than ``older_than_ms`` (relative to ``now_ms``).

    Files are listed *before* the table's metadata is (re)loaded, so a file committed
    between the two steps is seen as referenced.
    """
    res = OrphanResult()
    files = list_files(tbl, props)
    res.files_total = len(files)
    res.bytes_total = sum(f.size for f in files)
    if reload is not None:
        tbl = reload()
    refs = referenced(tbl)
    cutoff = now_ms - older_than_ms
    doomed = []
    for f in files:
        if f.path in refs:
            continue
        res.orphans += 1
        res.orphan_bytes += f.size
        if f.mtime_ms is None or f.mtime_ms > cutoff:
            res.kept_young += 1
            continue
        doomed.append(f)
    if dry_run:
        res.deleted = len(doomed)
        res.bytes_freed = sum(f.size for f in doomed)
        return res
    fs, _ = filesystem(tbl.location(), props)
    for f in doomed:
        try:
            fs.delete_file(f.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            res.failed.append(f"{f.path}: {e}")
            continue
        res.deleted += 1
        res.bytes_freed += f.size
        if progress is not None:
            progress(1)
    return res
