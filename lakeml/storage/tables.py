"""Open the pyiceberg catalog and keep the lakeml tables in line with their contract."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from lakeml.errors import ConfigError, MissingDependencyError, NotFoundError, StorageError
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
        except (NotFoundError, ConfigError):
            raise
        except Exception as e:
            raise StorageError(f"cannot open lakeml table {ident}: {type(e).__name__}: {e}. "
                               "Check the catalog and bucket with 'lakeml doctor'.") from e


def append(tbl: "Table", data: Any, snapshot_properties: dict[str, str]) -> None:
    """``tbl.append(data)`` without pyiceberg 0.12's deep copy of the whole table metadata on every
    read of ``Transaction.table_metadata`` (about 20 per append, each costing O(snapshots))."""
    with _cached_transaction_class()(tbl) as tx:
        tx.append(data, snapshot_properties=snapshot_properties)


@lru_cache(maxsize=1)
def _cached_transaction_class() -> type:
    from pyiceberg.table import Transaction

    staged_metadata = _staged_metadata_function()

    class CachedTransaction(Transaction):
        """Computes the staged metadata once per (base metadata, staged updates); both are immutable."""

        _lakeml_cache: tuple | None = None

        @property
        def table_metadata(self):  # type: ignore[override]
            base, updates = self._table.metadata, self._updates
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
        from pyiceberg.table.update import _apply_table_update, _TableMetadataUpdateContext
        from pyiceberg.utils.datetime import datetime_to_millis
    except ImportError:  # pragma: no cover - another pyiceberg version
        return update_table_metadata

    def staged(base, updates):
        from datetime import datetime

        context = _TableMetadataUpdateContext()
        new = base
        for update in updates:
            new = _apply_table_update(update, new, context)
        if context.has_changes() and base.last_updated_ms == new.last_updated_ms:
            new = new.model_copy(update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())})
        new.spec().check_compatible(new.schema())
        new.sort_order().check_compatible(new.schema())
        return new

    return staged


def evolve(tbl: "Table", c: TableContract) -> "Table":
    """Bring an existing table up to its contract, additively: add columns and docs, set properties."""
    from pyiceberg.exceptions import CommitFailedException

    want = c.schema()
    for attempt in range(5):
        have = tbl.schema()
        missing = [f for f in want.fields if _absent(have, f.name)]
        docs = [f for f in want.fields if not _absent(have, f.name)
                and f.doc and have.find_field(f.name).doc != f.doc]
        props = {k: v for k, v in c.properties.items() if k != "format-version" and tbl.properties.get(k) != v}
        if not (missing or docs or props):
            return tbl
        try:
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
        except CommitFailedException:
            tbl.refresh()
    return tbl


def _absent(schema, name: str) -> bool:
    try:
        schema.find_field(name)
        return False
    except ValueError:
        return True
