"""``lake.tracking.inputs``: what a run read (Iceberg table snapshots, file digests), and loading it back."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lakeml import validation as v
from lakeml.entities import DatasetInput, Run
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lakeml.storage.committer import RowBuffer
    from lakeml.storage.config import LakeConfig
    from lakeml.storage.tables import TableStore


class RunInputs:
    """Dataset lineage of runs. ``check_run(run_id)`` raises for an unknown run; ``get_run`` reads one."""

    def __init__(self, config: "LakeConfig", store: "TableStore", buffer: "RowBuffer",
                 check_run: Callable[[str], Any], get_run: Callable[[str], Run], *, clock: Callable[[], int]):
        self.config = config
        self.store = store
        self._buffer = buffer
        self._check_run = check_run
        self._get_run = get_run
        self.clock = clock

    def log_input(self, run_id: str, *, table: str | None = None, path: str | os.PathLike | None = None,
                  role: str = "train", snapshot_id: int | None = None, name: str | None = None) -> DatasetInput:
        """Record what the run read: an Iceberg table (its current or given snapshot) or a file (its digest)."""
        self._check_run(run_id)
        role = v.validate_key(role, "input role")
        if (table is None) == (path is None):
            raise InvalidInputError("log_input needs exactly one of table='namespace.table' or path='file'")
        if table is not None:
            di = self._iceberg_input(table, role, snapshot_id, name)
        else:
            di = self._file_input(path, role, name)
        self._buffer.add((run_id, di.role, di.kind, di.name, di.table, di.snapshot_id, di.schema_id,
                          di.uri, di.digest, di.catalog, self.clock()))
        return di

    def load_table(self, table: str):
        """A table of the lake's catalog by identifier ``namespace.table``; NotFoundError if it does not exist."""
        from pyiceberg.exceptions import NoSuchTableError

        if not isinstance(table, str) or "." not in table:
            raise InvalidInputError(f"table {table!r} must be an identifier 'namespace.table'")
        try:
            return self.store.catalog.load_table(table)
        except NoSuchTableError:
            raise NotFoundError(f"table {table!r} does not exist in catalog {self.config.catalog_name!r}; "
                                "check the name with 'lakeml sql \"SHOW ALL TABLES\"'") from None

    def _iceberg_input(self, table: str, role: str, snapshot_id: int | None, name: str | None) -> DatasetInput:
        tbl = self.load_table(table)
        snap = tbl.snapshot_by_id(snapshot_id) if snapshot_id is not None else tbl.current_snapshot()
        if snap is None:
            what = f"snapshot {snapshot_id}" if snapshot_id is not None else "any snapshot (it is empty)"
            raise NotFoundError(f"table {table!r} has no {what}; log the input after the data is written")
        schema_id = snap.schema_id if snap.schema_id is not None else tbl.schema().schema_id
        return DatasetInput("iceberg", name or table, role, table, snap.snapshot_id, schema_id,
                            tbl.location(), None, self.config.catalog_name)

    def _file_input(self, path: str | os.PathLike, role: str, name: str | None) -> DatasetInput:
        from lakeml.storage.objectstore import filesystem

        text = v.utf8_text(str(path), "input file path")
        uri = text if "://" in text else Path(text).resolve().as_uri()
        fs, fpath = filesystem(uri, self.config.properties)
        digest = hashlib.sha256()
        try:
            with fs.open_input_stream(fpath) as f:
                while chunk := f.read(8 << 20):
                    digest.update(chunk)
        except FileNotFoundError:
            raise NotFoundError(f"input file {text!r} does not exist") from None
        except OSError as e:
            raise StorageError(f"could not read input file {text!r}: {e}") from e
        return DatasetInput("file", name or uri, role, None, None, None, uri, f"sha256:{digest.hexdigest()}")

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        """The inputs the run logged."""
        return list(self._get_run(run_id).inputs)

    def load_input(self, run_id: str, table: str | None = None, *,
                   role: str | None = None) -> "pa.Table | Path | str":
        """Load exactly the data the run saw: the logged snapshot of an Iceberg input (as Arrow),
        or, after checking its digest, a file input's local path (its URI if it is in object storage)."""
        inputs = [i for i in self.get_inputs(run_id)
                  if (table is None or table in (i.table, i.name)) and (role is None or i.role == role)]
        if not inputs:
            raise NotFoundError(f"run {run_id} logged no input matching table={table!r} role={role!r}")
        if len(inputs) > 1:
            names = ", ".join(f"{i.name} ({i.role})" for i in inputs)
            raise InvalidInputError(f"run {run_id} has several inputs ({names}); pass table= or role=")
        di = inputs[0]
        if di.kind == "iceberg":
            tbl = self.load_table(di.table)
            if tbl.snapshot_by_id(di.snapshot_id) is None:
                raise NotFoundError(f"snapshot {di.snapshot_id} of {di.table} has been expired; the exact data "
                                    "of this run is gone (raise the table's snapshot retention)")
            return tbl.scan(snapshot_id=di.snapshot_id).to_arrow()
        fresh = self._file_input(di.uri, di.role, di.name)
        if fresh.digest != di.digest:
            raise ConflictError(f"file {di.uri} changed since run {run_id} read it ({di.digest} -> {fresh.digest})")
        if di.uri.startswith("file://"):
            from urllib.parse import unquote, urlparse

            return Path(unquote(urlparse(di.uri).path))
        return di.uri  # an object-store URI: verified, read it with your own client
