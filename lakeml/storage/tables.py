"""Open the pyiceberg catalog and keep the lakeml tables in line with their contract."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from lakeml.errors import CommitError, ConfigError, MissingDependencyError, NotFoundError, StorageError
from lakeml.storage.config import LakeConfig
from lakeml.storage.contract import TableContract, load_contracts

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table


def open_catalog(config: LakeConfig) -> "Catalog":
    """Load the pyiceberg catalog named by ``config``; driver errors become lakeml errors."""
    try:
        from pyiceberg.catalog import load_catalog
    except ImportError as e:  # pragma: no cover - pyiceberg is a hard dependency
        raise MissingDependencyError("pyiceberg is missing: pip install 'pyiceberg[sql-sqlite,pyarrow]'") from e
    try:
        return load_catalog(config.catalog_name, **config.properties)
    except ImportError as e:
        raise MissingDependencyError(f"catalog {config.catalog_name!r} needs an extra package: {e}") from e
    except ValueError as e:
        raise ConfigError(f"catalog {config.catalog_name!r} is misconfigured: {e}") from e
    except Exception as e:
        raise StorageError(f"cannot open catalog {config.catalog_name!r} "
                           f"({config.properties.get('uri', '?')}): {e}. Check 'lakeml doctor'.") from e


class TableStore:
    """The lakeml namespace in a catalog: creates, evolves and caches its tables.

    Thread-safe; one instance can serve many clients (the committer and a server share it).
    """

    def __init__(self, config: LakeConfig, catalog: "Catalog | None" = None,
                 contracts: dict[str, TableContract] | None = None):
        self.config = config
        self.namespace = config.namespace
        self.contracts = contracts or load_contracts()
        self._catalog = catalog
        self._tables: dict[str, Table] = {}
        self._lock = threading.RLock()

    @property
    def catalog(self) -> "Catalog":
        with self._lock:
            if self._catalog is None:
                self._catalog = open_catalog(self.config)
            return self._catalog

    def identifier(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def table(self, name: str, *, refresh: bool = False) -> "Table":
        """The pyiceberg table ``name``, created or evolved on first use."""
        with self._lock:
            tbl = self._tables.get(name)
            if tbl is None:
                tbl = self._ensure(name)
                self._tables[name] = tbl
            elif refresh:
                tbl = self.reload(name)
            return tbl

    def reload(self, name: str) -> "Table":
        with self._lock:
            try:
                tbl = self.catalog.load_table(self.identifier(name))
            except Exception as e:
                raise StorageError(f"cannot load table {self.identifier(name)}: {e}") from e
            self._tables[name] = tbl
            return tbl

    def ensure_all(self) -> list[str]:
        """Create or evolve every contract table; returns their identifiers."""
        return [self.identifier(self.table(n).name()[-1]) for n in self.contracts]

    def _ensure(self, name: str) -> "Table":
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError

        if name not in self.contracts:
            raise NotFoundError(f"no lakeml table {name!r}; known tables: {', '.join(sorted(self.contracts))}")
        c = self.contracts[name]
        ident = self.identifier(name)
        try:
            try:
                tbl = self.catalog.load_table(ident)
            except NoSuchTableError:
                try:
                    self.catalog.create_namespace(self.namespace)
                except NamespaceAlreadyExistsError:
                    pass
                schema = c.schema()
                try:
                    return self.catalog.create_table(
                        ident, schema, partition_spec=c.partition_spec(schema),
                        sort_order=c.sort_order(schema), properties=dict(c.properties))
                except TableAlreadyExistsError:  # another process won the race
                    tbl = self.catalog.load_table(ident)
            return evolve(tbl, c)
        except (NotFoundError, ConfigError, CommitError):
            raise
        except Exception as e:
            raise StorageError(f"cannot open lakeml table {ident}: {type(e).__name__}: {e}. "
                               "Check the catalog and bucket with 'lakeml doctor'.") from e


def append(tbl: "Table", data: Any, snapshot_properties: dict[str, str]) -> None:
    """``tbl.append(data)`` without pyiceberg 0.12's deep copy of the whole table metadata on every
    read of ``Transaction.table_metadata`` (about 20 per append, each costing O(snapshots))."""
    if not tbl.spec().is_unpartitioned():
        _fast_partitions()
    if any(isinstance(f.type, _dictionary_type()) for f in data.schema):
        from lakeml.storage._pyiceberg_compat import quiet_dictionary_notice

        quiet_dictionary_notice()
    with _cached_transaction_class()(tbl) as tx:
        tx.lakeml_sort_order_id = sorted_order_id(tbl, data)  # recorded on the data files when sorted
        tx.append(data, snapshot_properties=snapshot_properties)


def sorted_order_id(tbl: "Table", data: Any) -> int | None:
    """The id of ``tbl``'s sort order if ``data`` is in that order, else None.

    Only orders of ascending identity fields are checked (every lakeml contract's are); rows with
    nulls in a sort column count as unsorted, so a file is never tagged with an order it breaks.
    """
    from lakeml.storage.committer import is_sorted

    order = tbl.sort_order()
    if order.is_unsorted or data.num_rows == 0:
        return None
    schema, cols = tbl.schema(), []
    for f in order.fields:
        name = schema.find_column_name(f.source_id)
        if name is None or str(f.transform) != "identity" or str(f.direction.value) != "asc" or "." in name:
            return None
        cols.append(name)
    return order.order_id if data.num_rows == 1 or is_sorted(data, cols) else None


def with_sort_order(data_file: Any, order_id: int | None) -> Any:
    """``data_file`` (a pyiceberg DataFile) tagged with ``order_id`` (pyiceberg's writer leaves it null)."""
    if order_id is not None:
        data_file[_sort_order_pos()] = order_id  # a Record: positions are its public setter
    return data_file


@lru_cache(maxsize=1)
def _dictionary_type() -> type:
    import pyarrow as pa

    return pa.DictionaryType


def _fast_partitions() -> None:
    from lakeml.storage._pyiceberg_compat import single_partition_fast_path

    single_partition_fast_path()


@lru_cache(maxsize=1)
def _sort_order_pos() -> int:
    from pyiceberg.manifest import DATA_FILE_TYPE

    return [f.name for f in DATA_FILE_TYPE[2].fields].index("sort_order_id")


@lru_cache(maxsize=1)
def _cached_transaction_class() -> type:
    from pyiceberg.table import Transaction

    from lakeml.storage._pyiceberg_compat import staged_updates, transaction_table

    staged_metadata = _staged_metadata_function()

    class CachedTransaction(Transaction):
        """Computes the staged metadata once per (base metadata, staged updates); both are immutable."""

        _lakeml_cache: tuple | None = None
        lakeml_sort_order_id: int | None = None  # tag appended data files with it (see sorted_order_id)

        def _append_snapshot_producer(self, *args: Any, **kwargs: Any) -> Any:
            producer = super()._append_snapshot_producer(*args, **kwargs)
            order_id = self.lakeml_sort_order_id
            if order_id is not None:
                add = producer.append_data_file
                producer.append_data_file = lambda f: add(with_sort_order(f, order_id))
            return producer

        @property
        def table_metadata(self):  # type: ignore[override]
            base, updates = transaction_table(self).metadata, staged_updates(self)
            c = self._lakeml_cache
            if c is None or c[0] is not base or c[1] is not updates:
                staged = staged_metadata(base, updates) if updates else base  # nothing staged yet: base
                c = self._lakeml_cache = (base, updates, staged)
            return c[2]

    return CachedTransaction


def _staged_metadata_function():
    """``update_table_metadata`` minus its final deep copy (pyiceberg's models are frozen, so the
    copy only costs time: O(snapshots) per call). Falls back to the public function."""
    from pyiceberg.table.update import update_table_metadata

    try:
        from pyiceberg.utils.datetime import datetime_to_millis

        from lakeml.storage._pyiceberg_compat import TableMetadataUpdateContext, apply_table_update
    except ImportError:  # pragma: no cover - another pyiceberg version (tests/test_pyiceberg_compat.py says so)
        return update_table_metadata

    def staged(base, updates):
        from datetime import datetime

        context = TableMetadataUpdateContext()
        new = base
        for update in updates:
            new = apply_table_update(update, new, context)
        if context.has_changes() and base.last_updated_ms == new.last_updated_ms:
            new = new.model_copy(update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())})
        new.spec().check_compatible(new.schema())
        new.sort_order().check_compatible(new.schema())
        return new

    return staged


def evolve(tbl: "Table", c: TableContract, *, deadline: float = 60.0) -> "Table":
    """Bring an existing table up to its contract, additively: add columns and docs, set properties.

    A concurrent change is retried (:func:`~lakeml.storage.retry.retry_commit`); raises
    :class:`~lakeml.errors.CommitError` rather than returning a table that is not evolved."""
    from pyiceberg.exceptions import CommitFailedException

    from lakeml.storage.retry import retry_commit

    want = c.schema()

    def attempt(n: int) -> "Table":
        if n:
            tbl.refresh()
        have = tbl.schema()
        missing = [f for f in want.fields if _absent(have, f.name)]
        docs = [f for f in want.fields if not _absent(have, f.name)
                and f.doc and have.find_field(f.name).doc != f.doc]
        props = {k: v for k, v in c.properties.items() if k != "format-version" and tbl.properties.get(k) != v}
        if missing or docs or props:
            with tbl.transaction() as tx:
                if missing or docs:
                    with tx.update_schema() as us:
                        for f in missing:
                            us.add_column(f.name, f.field_type, doc=f.doc)
                        for f in docs:
                            us.update_column(f.name, doc=f.doc)
                if props:
                    tx.set_properties(props)
        return tbl

    return retry_commit(attempt, what=f"evolving table {table_name(tbl)} to its contract",
                        deadline=deadline, retry_on=(CommitFailedException,))


def table_name(tbl: "Table") -> str:
    """``namespace.table`` of a pyiceberg table, for messages."""
    return ".".join(tbl.name())


def _absent(schema, name: str) -> bool:
    try:
        schema.find_field(name)
        return False
    except ValueError:
        return True
