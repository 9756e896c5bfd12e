"""The one door to pyiceberg internals: every private pyiceberg name lakeml relies on.

lakeml needs a few things pyiceberg does not export: a data-preserving rewrite snapshot
(compaction), writing data files without committing them, staging metadata without a deep
copy (the cached transaction), the transaction's staged updates, a hook to tag appended data
files with their sort order, and the layout of the SQL catalog's ``iceberg_tables`` table
(read directly for cheap freshness checks).
They are named here and nowhere else; ``tests/test_pyiceberg_compat.py`` checks each one,
so a pyiceberg upgrade that renames or removes one fails there, with this module's name.

Importing this module does not import pyiceberg: the functions and classes are loaded on
first attribute access (``_pyiceberg_compat.OverwriteFiles``), the SQL catalog's table and
column names are plain constants.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

# -- pyiceberg's SQL catalog schema (pyiceberg.catalog.sql.IcebergTables) -------------------------
SQL_CATALOG_TABLE = "iceberg_tables"
SQL_CATALOG_COLUMNS = {  # lakeml's name -> the column in iceberg_tables
    "catalog": "catalog_name",
    "namespace": "table_namespace",
    "table": "table_name",
    "metadata_location": "metadata_location",
    "previous_metadata_location": "previous_metadata_location",
}


def sql_locations_query(catalog_param: str = "c") -> str:
    """SQL returning ``(namespace, table, metadata_location)`` of every table of one SQL catalog,
    with the catalog name bound as ``:<catalog_param>``."""
    c = SQL_CATALOG_COLUMNS
    return (f"SELECT {c['namespace']}, {c['table']}, {c['metadata_location']} FROM {SQL_CATALOG_TABLE} "
            f"WHERE {c['catalog']} = :{catalog_param}")


@dataclass(frozen=True)
class Private:
    """One private pyiceberg name: where it lives and the keyword parameters lakeml passes it."""

    module: str
    name: str
    params: tuple[str, ...] = ()  # keyword parameters lakeml passes (checked by the tests)
    attrs: tuple[str, ...] = ()  # private attributes/methods of it lakeml reads or overrides

    @property
    def where(self) -> str:
        return f"{self.module}.{self.name}"


# public alias -> the private name behind it
PRIVATE: dict[str, Private] = {
    # compaction's RewriteFiles producer subclasses it, reading/overriding these members
    "OverwriteFiles": Private("pyiceberg.table.update.snapshot", "_OverwriteFiles",
                              params=("operation", "transaction", "io", "snapshot_properties"),
                              attrs=("_validate_concurrency", "_process_manifests", "_summary")),
    "ManifestMergeManager": Private("pyiceberg.table.update.snapshot", "_ManifestMergeManager",
                                    params=("target_size_bytes", "min_count_to_merge", "merge_enabled",
                                            "snapshot_producer"),
                                    attrs=("merge_manifests",)),
    "validate_data_files_exist": Private("pyiceberg.table.update.validate", "_validate_data_files_exist"),
    # writes Parquet data files for a table without committing them (compaction)
    "dataframe_to_data_files": Private("pyiceberg.io.pyarrow", "_dataframe_to_data_files",
                                       params=("table_metadata", "df", "io", "write_uuid")),
    # splits an append into partitions; wrapped with a one-partition fast path (single_partition_fast_path)
    "determine_partitions": Private("pyiceberg.io.pyarrow", "_determine_partitions",
                                    params=("spec", "schema", "arrow_table")),
    "TablePartition": Private("pyiceberg.io.pyarrow", "_TablePartition",
                              params=("partition_key", "arrow_table_partition")),
    # staged metadata without pyiceberg's deep copy (tables.CachedTransaction)
    "apply_table_update": Private("pyiceberg.table.update", "_apply_table_update"),
    "TableMetadataUpdateContext": Private("pyiceberg.table.update", "_TableMetadataUpdateContext",
                                          attrs=("has_changes",)),
}

# private instance attributes lakeml reads: (class, attribute) -> why
PRIVATE_ATTRIBUTES: dict[tuple[str, str], str] = {
    ("pyiceberg.table.Transaction", "_updates"): "the staged updates (tables.CachedTransaction)",
    ("pyiceberg.table.Transaction", "_table"): "the transaction's table (tables.CachedTransaction, compaction)",
    ("pyiceberg.table.Transaction", "_append_snapshot_producer"):
        "overridden to tag appended data files with their sort order id (tables.CachedTransaction)",
    ("pyiceberg.table.update.snapshot._SnapshotProducer", "_transaction"): "the producer's transaction",
    ("pyiceberg.table.update.snapshot._SnapshotProducer", "_deleted_data_files"): "files a rewrite removes",
    ("pyiceberg.table.update.snapshot._SnapshotProducer", "_commit_window"): "snapshots committed meanwhile",
}


def upgrade_message(what: str, detail: str = "") -> str:
    """The error text for a private name a pyiceberg upgrade broke."""
    try:
        from importlib.metadata import version

        v = version("pyiceberg")
    except Exception:  # pragma: no cover - not installed as a distribution
        v = "?"
    extra = f" ({detail})" if detail else ""
    return (f"pyiceberg {v} renamed or removed {what}{extra}; update lakeml/storage/_pyiceberg_compat.py "
            "(and the lakeml code that uses it) for this pyiceberg version, or install the pyiceberg "
            "version pinned in pyproject.toml")


def load(alias: str) -> Any:
    """The pyiceberg object behind ``alias`` (a key of :data:`PRIVATE`); ImportError naming the fix."""
    p = PRIVATE[alias]
    try:
        obj = getattr(importlib.import_module(p.module), p.name)
    except (ImportError, AttributeError) as e:
        raise ImportError(upgrade_message(p.where)) from e
    globals()[alias] = obj
    return obj


def staged_updates(tx: Any) -> tuple:
    """The updates staged in a pyiceberg ``Transaction`` so far."""
    return tx._updates


def transaction_table(tx: Any) -> Any:
    """The table a pyiceberg ``Transaction`` (or a snapshot producer's transaction) works on."""
    return tx._table


def single_partition_fast_path() -> None:
    """Wrap pyiceberg's ``_determine_partitions`` so an append whose rows all fall in one partition (a
    commit of the last seconds of a day-partitioned log) skips its per-partition filter: the filter
    copies every column (about 2 µs a row for the prediction log's JSON). Same partition key, same
    files; other appends take pyiceberg's own path. Idempotent."""
    import pyiceberg.io.pyarrow as pyarrow_io

    original = load("determine_partitions")
    if getattr(original, "lakeml_fast_path", False):
        return
    part_cls = load("TablePartition")

    def determine_partitions(spec: Any, schema: Any, arrow_table: Any) -> Any:
        import pyarrow.compute as pc
        from pyiceberg.partitioning import PartitionFieldValue, PartitionKey

        values = []
        for field in spec.fields:
            name = schema.find_column_name(field.source_id)
            if name is None or "." in name or arrow_table.num_rows == 0:
                return original(spec, schema, arrow_table)
            col = arrow_table.column(name)
            if col.null_count:
                return original(spec, schema, arrow_table)
            part = field.transform.pyarrow_transform(schema.find_field(field.source_id).field_type)(col)
            lo_hi = pc.min_max(part)
            lo, hi = lo_hi["min"].as_py(), lo_hi["max"].as_py()
            if lo != hi or lo is None:
                return original(spec, schema, arrow_table)
            values.append(PartitionFieldValue(field=field, value=lo))
        key = PartitionKey(field_values=values, partition_spec=spec, schema=schema)
        return [part_cls(partition_key=key, arrow_table_partition=arrow_table)]  # chunks as they are: no copy

    determine_partitions.lakeml_fast_path = True  # type: ignore[attr-defined]
    determine_partitions.__wrapped__ = original  # type: ignore[attr-defined]
    pyarrow_io._determine_partitions = determine_partitions


class _DictionaryNotice:
    """Drops pyiceberg's warning that a dictionary-encoded column "will be inferred as string on read":
    lakeml appends them on purpose (the values a request repeats, see serving/predframe.py), to columns
    the contract declares as string."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("Iceberg does not have a dictionary type")


_NOTICE = _DictionaryNotice()


def quiet_dictionary_notice() -> None:
    """Install :class:`_DictionaryNotice` on pyiceberg's logger (idempotent)."""
    import logging

    logger = logging.getLogger("pyiceberg.io.pyarrow")
    if _NOTICE not in logger.filters:
        logger.addFilter(_NOTICE)


def __getattr__(name: str) -> Any:
    if name in PRIVATE:
        return load(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
