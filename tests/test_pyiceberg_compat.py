"""Every private pyiceberg name lakeml relies on still exists, with the parameters lakeml passes.

A pyiceberg upgrade that renames or removes one fails here, one test per name, with a message
saying which name and which file to update (lakeml/storage/_pyiceberg_compat.py).
"""

from __future__ import annotations

import importlib
import inspect
import sqlite3
import subprocess
import sys

import pyarrow as pa
import pytest

from lakeml.storage import _pyiceberg_compat as compat
from lakeml.storage import config as lake_config


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.fail(compat.upgrade_message(dotted))


@pytest.mark.parametrize("alias", sorted(compat.PRIVATE))
def test_private_name_exists_with_the_parameters_lakeml_passes(alias):
    p = compat.PRIVATE[alias]
    obj = _resolve(p.where)
    assert compat.load(alias) is obj and getattr(compat, alias) is obj
    if p.params:
        params = inspect.signature(obj).parameters
        missing = [n for n in p.params if n not in params]
        assert not missing, compat.upgrade_message(p.where, f"no parameter {', '.join(missing)}")
    for attr in p.attrs:
        assert hasattr(obj, attr), compat.upgrade_message(f"{p.where}.{attr}")


@pytest.mark.parametrize("owner,attr", sorted(compat.PRIVATE_ATTRIBUTES))
def test_private_attribute_is_set_on_a_real_object(owner, attr, tmp_path):
    """Instance attributes only exist on instances: build the real object on a real table."""
    cls = _resolve(owner)
    tbl = _table(tmp_path)
    from lakeml.storage.tables import _cached_transaction_class

    tx = _cached_transaction_class()(tbl)
    if owner.endswith("Transaction"):
        obj = tx
    else:
        obj = compat.OverwriteFiles(operation=_operation(), transaction=tx, io=tbl.io, snapshot_properties={})
    assert isinstance(obj, cls)
    assert hasattr(obj, attr), compat.upgrade_message(f"{owner}.{attr}", compat.PRIVATE_ATTRIBUTES[(owner, attr)])


def test_accessors_read_the_transaction(tmp_path):
    tbl = _table(tmp_path)
    with tbl.transaction() as tx:
        assert compat.transaction_table(tx) is tbl and compat.staged_updates(tx) == ()
        tx.set_properties({"x": "1"})
        assert len(compat.staged_updates(tx)) == 1
    assert tbl.properties["x"] == "1"


def test_sql_catalog_table_layout_matches_pyiceberg(tmp_path):
    from pyiceberg.catalog.sql import IcebergTables

    assert IcebergTables.__tablename__ == compat.SQL_CATALOG_TABLE, compat.upgrade_message("iceberg_tables")
    columns = set(IcebergTables.__table__.columns.keys())
    gone = set(compat.SQL_CATALOG_COLUMNS.values()) - columns
    assert not gone, compat.upgrade_message(f"iceberg_tables columns {sorted(gone)}")
    # and the query lakeml runs on the catalog file itself (no pyiceberg) answers what pyiceberg stored
    tbl = _table(tmp_path)
    con = sqlite3.connect(tmp_path / "catalog.db")
    got = con.execute(compat.sql_locations_query("c"), {"c": "lakeml"}).fetchall()
    assert got == [("t", "scratch", tbl.metadata_location)]


@pytest.mark.parametrize("name", ["S3_ENDPOINT", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_SESSION_TOKEN",
                                  "S3_REGION", "S3_FORCE_VIRTUAL_ADDRESSING", "S3_CONNECT_TIMEOUT",
                                  "S3_REQUEST_TIMEOUT", "S3_RETRY_STRATEGY_IMPL"])
def test_s3_keys_mirror_pyiceberg(name):
    """lakeml mirrors pyiceberg.io's S3_* keys (so that ``import lakeml`` does not import pyiceberg)."""
    import pyiceberg.io

    assert getattr(lake_config, name) == getattr(pyiceberg.io, name), (
        f"pyiceberg.io.{name} is now {getattr(pyiceberg.io, name)!r}; update lakeml/storage/config.py")


def test_importing_the_compat_module_does_not_import_pyiceberg():
    code = ("import sys, lakeml.storage._pyiceberg_compat as c; c.sql_locations_query(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyiceberg'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_renamed_name_fails_with_the_fix(monkeypatch):
    monkeypatch.setitem(compat.PRIVATE, "Gone", compat.Private("pyiceberg.table.update", "_NoSuchThing"))
    with pytest.raises(ImportError, match=r"pyiceberg \S+ renamed or removed pyiceberg.table.update._NoSuchThing; "
                                          r"update lakeml/storage/_pyiceberg_compat.py"):
        compat.load("Gone")


def _table(tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog

    (tmp_path / "wh").mkdir(exist_ok=True)
    cat = SqlCatalog("lakeml", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "wh").as_uri())
    cat.create_namespace_if_not_exists("t")
    if cat.table_exists("t.scratch"):
        return cat.load_table("t.scratch")
    tbl = cat.create_table("t.scratch", pa.schema([pa.field("n", pa.int64())]))
    tbl.append(pa.table({"n": [1]}, schema=pa.schema([pa.field("n", pa.int64())])))
    return tbl


def _operation():
    from pyiceberg.table.snapshots import Operation

    return Operation.OVERWRITE


@pytest.mark.parametrize("props,endpoint,scheme,virtual", [
    ({"s3.endpoint": "http://127.0.0.1:9000", "s3.access-key-id": "k", "s3.secret-access-key": "s"},
     "127.0.0.1:9000", "http", False),
    ({"s3.endpoint": "https://minio.example:9000", "s3.path-style-access": "false", "s3.region": "eu-west-1"},
     "minio.example:9000", "https", True),
    ({"s3.endpoint": "minio:9000", "s3.force-virtual-addressing": "true", "s3.path-style-access": "true"},
     "minio:9000", "http", True),  # pyiceberg's own key wins
    ({"s3.region": "us-west-2"}, None, "https", False),
])
def test_s3_keys_are_parsed_once_for_pyarrow_and_duckdb(props, endpoint, scheme, virtual):
    """The pyarrow filesystem (artifacts, orphan cleanup, doctor) and DuckDB's secret (SQL reads) are
    built from the same parse of the catalog's s3.* keys, so they always reach the same store."""
    from lakeml.query.attach import s3_secret_sql
    from lakeml.storage.objectstore import S3Settings, s3_filesystem

    s = S3Settings.from_properties(props)
    assert (s.endpoint, s.use_ssl, s.virtual_addressing) == (endpoint, scheme == "https", virtual)
    kw = s3_filesystem(props).__reduce__()[1][0]
    assert kw["region"] == s.region == props.get("s3.region", "us-east-1")
    assert kw["force_virtual_addressing"] is virtual and kw["scheme"] == scheme
    assert kw["endpoint_override"] == (endpoint or "")
    assert (kw["access_key"] or None) == props.get("s3.access-key-id")
    sql = s3_secret_sql(props)
    assert f"REGION '{s.region}'" in sql and f"URL_STYLE '{'vhost' if virtual else 'path'}'" in sql
    assert (f"ENDPOINT '{endpoint}'" in sql) is (endpoint is not None)
    assert ("KEY_ID 'k'" in sql) is ("s3.access-key-id" in props)
    assert s3_secret_sql({"uri": "sqlite:///x"}) is None


def test_single_partition_fast_path_splits_like_pyiceberg():
    """The wrapped _determine_partitions gives pyiceberg's own partitions: one day -> the fast path,
    two days or a null partition value -> pyiceberg's path."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import DayTransform
    from pyiceberg.types import NestedField, StringType, TimestamptzType

    import pyiceberg.io.pyarrow as pyarrow_io

    compat.single_partition_fast_path()
    compat.single_partition_fast_path()  # idempotent: still one wrapper
    fast = pyarrow_io._determine_partitions
    assert fast.lakeml_fast_path and not getattr(fast.__wrapped__, "lakeml_fast_path", False)
    schema = Schema(NestedField(1, "ts", TimestamptzType(), required=False),
                    NestedField(2, "v", StringType(), required=False))
    spec = PartitionSpec(PartitionField(source_id=1, field_id=1000, transform=DayTransform(), name="ts_day"))
    day = 1_700_000_000_000_000
    arrow_schema = pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("v", pa.string())])
    cases = {
        "one day": [day, day + 1, day + 3_600_000_000],
        "two days": [day, day + 86_400_000_000, day + 1],
        "a null": [day, None, day + 1],
    }
    for what, ts in cases.items():
        tbl = pa.Table.from_batches([pa.record_batch([pa.array(ts[:2], pa.timestamp("us", tz="UTC")),
                                                      pa.array(["a", "b"])], schema=arrow_schema),
                                     pa.record_batch([pa.array(ts[2:], pa.timestamp("us", tz="UTC")),
                                                      pa.array(["c"])], schema=arrow_schema)])
        want = list(fast.__wrapped__(spec, schema, tbl))
        got = list(fast(spec, schema, tbl))
        assert [p.partition_key.partition for p in got] == [p.partition_key.partition for p in want], what
        assert [p.arrow_table_partition.to_pylist() for p in got] == \
            [p.arrow_table_partition.to_pylist() for p in want], what
    assert len(list(fast(spec, schema, tbl))) == 2  # the null case: two partitions
