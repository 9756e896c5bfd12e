"""The metric summary kept on local disk, so that a new client does not rebuild it from every point.

Building ``metric_latest`` reads all of ``lakeml.metrics`` (seconds at 100M points). When a
build took at least ``LAKEML_SUMMARY_PERSIST_SECONDS`` (default 1; negative: never), the
summary is written to ``<cache dir>/summary-<table>.parquet`` together with the list of data
files it covers. The next client loads it and merges only the files added since; a file
that is gone (compaction) makes it rebuild, exactly as a live client does. Data files are
immutable and the key includes the table's UUID, so a stored summary is never wrong for
its files. The cache dir is ``LAKEML_CACHE_DIR``, else ``$XDG_CACHE_HOME/lakeml``, else
``~/.cache/lakeml``; a missing, unreadable or foreign file is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from lakeml.query.cache import LatestCache
from lakeml.query.files import Listing
from lakeml.storage.localdirs import cache_dir

log = logging.getLogger("lakeml.query")

ENV_PERSIST_SECONDS = "LAKEML_SUMMARY_PERSIST_SECONDS"
_META = b"lakeml.summary"
_VERSION = 1


def _persist_seconds() -> float:
    try:
        return float(os.environ.get(ENV_PERSIST_SECONDS, "1"))
    except ValueError:
        return 1.0


def summary_path(tbl: Any) -> Path:
    """Where the summary of metrics table ``tbl`` is kept (one file per table UUID and location)."""
    key = f"{tbl.metadata.table_uuid}|{tbl.location()}".encode()
    return cache_dir() / f"summary-{hashlib.sha256(key).hexdigest()[:24]}.parquet"


def restore(con: Any, latest: LatestCache, tbl: Any) -> bool:
    """Fill an empty ``latest`` from the stored summary of ``tbl``; False when there is none to use."""
    if tbl is None or _persist_seconds() < 0:
        return False
    path = summary_path(tbl)
    if not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path)
        meta = json.loads((data.schema.metadata or {})[_META])
        if meta.get("version") != _VERSION or meta.get("table_uuid") != str(tbl.metadata.table_uuid) \
                or meta.get("schema_id") != tbl.schema().schema_id:
            return False
        con.register("__lakeml_restore", data)
        try:
            con.execute(f"INSERT INTO {latest.table} BY NAME SELECT * FROM __lakeml_restore")
        finally:
            con.unregister("__lakeml_restore")
    except Exception as e:  # a broken or foreign file: rebuild and overwrite it
        log.info("lakeml: ignoring the stored metric summary %s (%s)", path, e)
        con.execute(f"DELETE FROM {latest.table}")
        return False
    latest.files.clear()
    latest._number(list(meta["files"]))
    latest.schema_id = meta["schema_id"]
    latest.snapshot_id = meta.get("snapshot_id")
    latest.exact = True
    return True


def sync(con: Any, latest: LatestCache, tbl: Any, listing: Listing) -> None:
    """``latest.sync`` that stores the summary afterwards when bringing it up to date was slow."""
    start = time.perf_counter()
    latest.sync(con, tbl, listing)
    limit = _persist_seconds()
    if limit >= 0 and tbl is not None and latest.exact and time.perf_counter() - start >= limit:
        save(con, latest, tbl)


def save(con: Any, latest: LatestCache, tbl: Any) -> Path | None:
    """Write ``latest`` (an exact summary) for the next client; None when the cache dir is not writable."""
    import pyarrow.parquet as pq

    from lakeml.query.history import _fetch

    path = summary_path(tbl)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = _fetch(con.execute(f"SELECT * FROM {latest.table}"))
        meta = {"version": _VERSION, "table_uuid": str(tbl.metadata.table_uuid), "location": tbl.location(),
                "schema_id": latest.schema_id, "snapshot_id": latest.snapshot_id, "files": list(latest.files)}
        data = data.replace_schema_metadata({_META: json.dumps(meta).encode()})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".summary-", suffix=".tmp")
        os.close(fd)
        try:
            pq.write_table(data, tmp, compression="zstd")
            os.replace(tmp, path)  # readers see the old file or the new one, never half of one
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except Exception as e:
        log.info("lakeml: could not store the metric summary in %s (%s)", path.parent, e)
        return None
    return path
