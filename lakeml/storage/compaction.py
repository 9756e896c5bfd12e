"""Compaction: rewrite a table's small data files as few large, sorted ones.

Per partition, the small live data files are read, sorted by the table's sort order
(metrics: run_id, key, step) and written back as files of up to the table's target
size. The commit is a *rewrite*: a snapshot (operation ``replace``) that removes
exactly the files that were read and adds the new ones, and merges the manifests.

Safe with concurrent writers: the rewrite keeps every file it did not read, so an
append that lands between the read and the commit survives (pyiceberg rebuilds the
snapshot on top of the new head and retries); it fails only if a file it replaces was
removed meanwhile (another compaction won), in which case nothing is changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.table import Table

MAINTENANCE = "lakeml.maintenance"  # snapshot summary key: what a maintenance snapshot did
# Summary keys of the parent snapshot that describe the table's state, not one commit:
# a rewrite carries them forward so that readers walking back from the head still find them.
_NOT_CARRIED = {"lakeml.batch-id", "lakeml.batch-ids", "lakeml.writer", MAINTENANCE}


@dataclass(frozen=True)
class CompactionPolicy:
    """Which files are rewritten.

    ``small_file_bytes``: files smaller than this are candidates; ``min_files``: a partition is
    compacted when it holds at least this many candidates; ``max_group_bytes``: at most this
    many bytes of candidates are read into memory for one output group.
    """

    small_file_bytes: int = 32 << 20
    min_files: int = 2
    max_group_bytes: int = 256 << 20


@dataclass
class CompactionResult:
    files_before: int = 0
    files_after: int = 0
    files_rewritten: int = 0
    files_written: int = 0
    bytes_rewritten: int = 0
    bytes_written: int = 0
    partitions: int = 0
    manifests_before: int = 0
    manifests_after: int = 0
    snapshot_id: int | None = None
    conflicts: int = 0
    notes: list[str] = field(default_factory=list)


def live_files(tbl: "Table") -> list[Any]:
    """The current snapshot's data files (pyiceberg ``DataFile``), with their partition."""
    snap = tbl.current_snapshot()
    if snap is None:
        return []
    from pyiceberg.manifest import DataFileContent, ManifestContent

    out = []
    for mf in snap.manifests(tbl.io):
        if mf.content != ManifestContent.DATA:
            continue
        for e in mf.fetch_manifest_entry(tbl.io, discard_deleted=True):
            if e.data_file.content == DataFileContent.DATA:
                out.append(e.data_file)
    return out


def partition_key(df: Any) -> tuple:
    return (df.spec_id, tuple(df.partition) if df.partition is not None else ())


def plan_groups(files: Iterable[Any], policy: CompactionPolicy) -> list[list[Any]]:
    """Groups of small files (same partition) to rewrite together, largest partitions first."""
    by_part: dict[tuple, list[Any]] = {}
    for f in files:
        if f.file_size_in_bytes < policy.small_file_bytes:
            by_part.setdefault(partition_key(f), []).append(f)
    groups: list[list[Any]] = []
    for part in sorted(by_part, key=lambda p: -len(by_part[p])):
        small = sorted(by_part[part], key=lambda f: f.file_path)
        if len(small) < policy.min_files:
            continue
        group: list[Any] = []
        size = 0
        for f in small:
            if group and size + f.file_size_in_bytes > policy.max_group_bytes:
                if len(group) > 1:
                    groups.append(group)
                group, size = [], 0
            group.append(f)
            size += f.file_size_in_bytes
        if len(group) > 1:
            groups.append(group)
    return groups


def files_per_partition(files: Iterable[Any]) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for f in files:
        k = partition_key(f)
        out[k] = out.get(k, 0) + 1
    return out


def sort_columns(tbl: "Table") -> list[str]:
    """Column names of the table's default sort order (identity transforms only)."""
    order = tbl.sort_order()
    schema = tbl.schema()
    cols = []
    for f in order.fields:
        name = schema.find_column_name(f.source_id)
        if name is None or str(f.transform) != "identity":
            break
        cols.append(name)
    return cols


def read_files(tbl: "Table", files: list[Any]) -> Any:
    """The rows of exactly ``files`` as one Arrow table in the current schema."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.table import FileScanTask

    tasks = [FileScanTask(f) for f in files]
    return ArrowScan(tbl.metadata, tbl.io, tbl.schema(), AlwaysTrue()).to_table(tasks)


def write_sorted(tbl: "Table", data: Any, sort: list[str]) -> list[Any]:
    """Write ``data`` sorted by ``sort`` as new data files of ``tbl`` (not committed)."""
    from lakeml.storage._pyiceberg_compat import dataframe_to_data_files

    from lakeml.storage.tables import sorted_order_id, with_sort_order

    if sort and data.num_rows > 1:
        data = data.sort_by([(c, "ascending") for c in sort])
    order_id = sorted_order_id(tbl, data)  # the files record the order they are in
    return [with_sort_order(f, order_id) for f in
            dataframe_to_data_files(table_metadata=tbl.metadata, df=data, io=tbl.io, write_uuid=uuid.uuid4())]


def commit_rewrite(tbl: "Table", removed: list[Any], added: list[Any], properties: dict[str, str],
                   *, merge_manifests: bool = True) -> int | None:
    """Commit one ``replace`` snapshot that removes exactly ``removed`` and adds ``added``.

    Returns the new snapshot id. Raises pyiceberg's ``ValidationException`` when a removed
    file is gone from the head (nothing is committed then).
    """
    tx = _transaction_class()(tbl)
    producer = _rewrite_class()(tx, tbl.io, {**_carried(tbl), **properties}, merge_manifests)
    for f in removed:
        producer.delete_data_file(f)
    for f in added:
        producer.append_data_file(f)
    producer.commit()
    tx.commit_transaction()
    return producer.snapshot_id


def _carried(tbl: "Table") -> dict[str, str]:
    snap = tbl.current_snapshot()
    if snap is None or snap.summary is None:
        return {}
    return {k: v for k, v in snap.summary.additional_properties.items()
            if k.startswith("lakeml.") and k not in _NOT_CARRIED}


def compact(tbl: "Table", policy: CompactionPolicy, *, properties: dict[str, str] | None = None,
            dry_run: bool = False, progress: Callable[[int], None] | None = None,
            deadline: float = 60.0, refresh: Callable[[], "Table"] | None = None) -> CompactionResult:
    """Compact ``tbl`` (one commit for all partitions); returns what was done.

    ``progress(n)`` is called with the bytes read as each group is rewritten. If a file
    it replaces disappears before the commit (a concurrent compaction won), the written
    files are abandoned (orphan cleanup removes them) and the table is planned again
    (:func:`~lakeml.storage.retry.retry_commit`); :class:`~lakeml.errors.CommitError` when
    that keeps failing for ``deadline`` seconds (the table is unchanged then).
    """
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    from lakeml.storage.retry import retry_commit
    from lakeml.storage.tables import table_name

    props = {MAINTENANCE: "compact", **(properties or {})}
    notes: list[str] = []
    current = [tbl]

    def lost_race(n: int, e: BaseException) -> None:
        # a file we replace was removed meanwhile, or the table allows no rebase (the registry
        # tables set commit.retry.num-retries to 0) and another writer committed: plan again
        notes.append(f"attempt {n + 1}: {e}")
        current[0] = refresh() if refresh is not None else _reload(current[0])

    def attempt(n: int) -> CompactionResult:
        t = current[0]
        res = CompactionResult(conflicts=n, notes=notes)
        files = live_files(t)
        res.files_before = res.files_after = len(files)
        res.manifests_before = res.manifests_after = _manifest_count(t)
        groups = plan_groups(files, policy)
        if not groups:
            return res
        removed = [f for g in groups for f in g]
        res.partitions = len({partition_key(g[0]) for g in groups})
        res.files_rewritten = len(removed)
        res.bytes_rewritten = sum(f.file_size_in_bytes for f in removed)
        if dry_run:
            res.files_after = len(files) - len(removed) + res.partitions
            return res
        sort = sort_columns(t)
        added: list[Any] = []
        for g in groups:
            added.extend(write_sorted(t, read_files(t, g), sort))
            if progress is not None:
                progress(sum(f.file_size_in_bytes for f in g))
        res.snapshot_id = commit_rewrite(t, removed, added, props)
        res.files_written = len(added)
        res.bytes_written = sum(f.file_size_in_bytes for f in added)
        res.files_after = len(files) - len(removed) + len(added)
        res.manifests_after = _manifest_count(t)
        return res

    return retry_commit(attempt, what=f"compaction of {table_name(tbl)}", deadline=deadline,
                        retry_on=(ValidationException, CommitFailedException), on_retry=lost_race,
                        hint="Other compactions kept winning; the table is unchanged. Run 'lakeml maintain' "
                             "again once they are done.")


def rewrite_manifests(tbl: "Table", *, properties: dict[str, str] | None = None,
                      deadline: float = 60.0) -> tuple[int, int]:
    """Merge the current snapshot's manifests (no data change); returns (before, after)."""
    from pyiceberg.exceptions import CommitFailedException

    from lakeml.storage.retry import retry_commit
    from lakeml.storage.tables import table_name

    before = _manifest_count(tbl)
    if before <= 1:
        return before, before

    def attempt(n: int) -> None:  # another writer won: merging again is just as good
        commit_rewrite(tbl if n == 0 else _reload(tbl), [], [],
                       {MAINTENANCE: "rewrite-manifests", **(properties or {})})

    retry_commit(attempt, what=f"manifest rewrite of {table_name(tbl)}", deadline=deadline,
                 retry_on=(CommitFailedException,))
    return before, _manifest_count(tbl)


def _manifest_count(tbl: "Table") -> int:
    snap = tbl.current_snapshot()
    return 0 if snap is None else len(snap.manifests(tbl.io))


def _reload(tbl: "Table") -> "Table":
    tbl.refresh()
    return tbl


@lru_cache(maxsize=1)
def _transaction_class() -> type:
    from lakeml.storage.tables import _cached_transaction_class

    return _cached_transaction_class()


@lru_cache(maxsize=1)
def _rewrite_class() -> type:
    """A pyiceberg snapshot producer for a data-preserving rewrite (built on ``_OverwriteFiles``)."""
    from pyiceberg.table import TableProperties
    from pyiceberg.table.snapshots import Operation, Summary
    from pyiceberg.utils.properties import property_as_int

    from lakeml.storage._pyiceberg_compat import ManifestMergeManager, OverwriteFiles, transaction_table

    class RewriteFiles(OverwriteFiles):
        """Removes exactly the listed data files, adds new ones, merges manifests.

        Differs from an overwrite in its validation: files added concurrently are not a
        conflict (they are kept), only a concurrent removal of a file being replaced is.
        """

        def __init__(self, transaction: Any, io: Any, snapshot_properties: dict[str, str], merge: bool):
            super().__init__(operation=Operation.OVERWRITE, transaction=transaction, io=io,
                             snapshot_properties=snapshot_properties)
            self._merge = merge

        def _validate_concurrency(self) -> None:
            from lakeml.storage._pyiceberg_compat import validate_data_files_exist

            window = self._commit_window
            if window is None or window.is_empty() or window.head is None or not self._deleted_data_files:
                return
            validate_data_files_exist(transaction_table(self._transaction), window.head, self._deleted_data_files,
                                       window.base)

        def _process_manifests(self, manifests: list[Any]) -> list[Any]:
            if not self._merge:
                return manifests
            from pyiceberg.manifest import ManifestContent

            props = self._transaction.table_metadata.properties
            target = property_as_int(props, TableProperties.MANIFEST_TARGET_SIZE_BYTES,
                                     TableProperties.MANIFEST_TARGET_SIZE_BYTES_DEFAULT)
            data = [m for m in manifests if m.content == ManifestContent.DATA]
            deletes = [m for m in manifests if m.content != ManifestContent.DATA]
            merger = ManifestMergeManager(target_size_bytes=target, min_count_to_merge=2, merge_enabled=True,
                                           snapshot_producer=self)
            return merger.merge_manifests(data) + deletes

        def _summary(self, snapshot_properties: dict[str, str] = {}) -> Any:  # noqa: B006 - read only
            s = super()._summary(snapshot_properties)
            return Summary(operation=Operation.REPLACE, **s.additional_properties)

    return RewriteFiles
