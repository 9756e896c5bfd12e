"""Dataset lineage: log_input records an Iceberg snapshot or a file digest, and load_input gives back
exactly the data the run saw, even after the table changed."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

import lakeml
from lakeml import ConflictError, InvalidInputError, NotFoundError


def _features(catalog, rows: int = 5):
    try:
        catalog.create_namespace("analytics")
    except Exception:  # noqa: BLE001 - already there
        pass
    data = pa.table({"id": pa.array(range(rows), pa.int64()),
                     "tenure": pa.array([float(i * 10) for i in range(rows)], pa.float64()),
                     "churned": pa.array([i % 2 == 0 for i in range(rows)], pa.bool_())})
    tbl = catalog.create_table("analytics.churn_features", schema=data.schema)
    tbl.append(data)
    return tbl, data


def _sorted(t: pa.Table) -> list[dict]:
    return sorted(t.to_pylist(), key=lambda r: r["id"])


def test_iceberg_input_reloads_exactly_what_the_run_saw(lake):
    from pyiceberg.expressions import EqualTo

    tbl, seen = _features(lake.store.catalog)
    snap = tbl.current_snapshot()
    run = lake.create_run("lineage")
    di = lake.log_input(run.run_id, table="analytics.churn_features", role="train")
    assert (di.kind, di.table, di.snapshot_id, di.schema_id, di.role) == \
        ("iceberg", "analytics.churn_features", snap.snapshot_id, tbl.schema().schema_id, "train")
    assert di.catalog == lake.config.catalog_name and di.uri == tbl.location()

    # the table moves on: appends, a delete, a new column
    tbl.append(pa.table({"id": pa.array([100, 101], pa.int64()), "tenure": [1.0, 2.0], "churned": [True, False]}))
    tbl.delete(EqualTo("id", 2))
    with tbl.update_schema() as us:
        from pyiceberg.types import StringType

        us.add_column("segment", StringType())
    tbl = lake.store.catalog.load_table("analytics.churn_features")
    assert len(tbl.scan().to_arrow()) == 6 and tbl.current_snapshot().snapshot_id != snap.snapshot_id

    got = lake.load_input(run.run_id, "analytics.churn_features")
    assert _sorted(got.select(["id", "tenure", "churned"])) == _sorted(seen)
    assert lake.load_input(run.run_id, role="train").num_rows == 5

    inputs = lake.get_run(run.run_id).inputs
    assert len(inputs) == 1 and inputs[0].snapshot_id == snap.snapshot_id
    # a later run sees the new snapshot
    run2 = lake.create_run("lineage")
    lake.log_input(run2.run_id, table="analytics.churn_features", role="train")
    assert lake.load_input(run2.run_id).num_rows == 6


def test_iceberg_input_at_an_older_snapshot(lake):
    tbl, seen = _features(lake.store.catalog)
    first = tbl.current_snapshot().snapshot_id
    tbl.append(pa.table({"id": pa.array([7], pa.int64()), "tenure": [7.0], "churned": [False]}))
    run = lake.create_run("lineage")
    di = lake.log_input(run.run_id, table="analytics.churn_features", role="eval", snapshot_id=first,
                        name="features@v1")
    assert (di.snapshot_id, di.name) == (first, "features@v1")
    assert _sorted(lake.load_input(run.run_id, role="eval")) == _sorted(seen)


def test_file_input_records_uri_and_digest(lake, tmp_path):
    f = tmp_path / "train data.csv"  # a space: the URI is percent-encoded
    f.write_text("id,y\n1,0\n2,1\n")
    run = lake.create_run("lineage")
    di = lake.log_input(run.run_id, path=str(f), role="train")
    assert (di.kind, di.uri, di.role) == ("file", f.resolve().as_uri(), "train")
    assert di.digest == "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()
    got = lake.get_run(run.run_id).inputs
    assert [(i.kind, i.uri, i.digest) for i in got] == [("file", di.uri, di.digest)]
    assert lake.load_input(run.run_id) == f.resolve()

    f.write_text("id,y\n1,1\n")  # the file changed since the run read it
    with pytest.raises(ConflictError, match="changed since run"):
        lake.load_input(run.run_id)


def test_file_input_on_object_storage(s3_bucket, tmp_path):
    from lakeml.storage.objectstore import filesystem
    from tests.conftest import s3_lake_kwargs

    server, bucket = s3_bucket
    with lakeml.connect(**s3_lake_kwargs(server, bucket, tmp_path)) as lake:
        uri = f"s3://{bucket}/inputs/data.bin"
        fs, path = filesystem(uri, lake.config.properties)
        with fs.open_output_stream(path) as out:
            out.write(b"\x00\x01" * 1000)
        run = lake.create_run("lineage")
        di = lake.log_input(run.run_id, path=uri)
        assert di.uri == uri and di.digest == "sha256:" + hashlib.sha256(b"\x00\x01" * 1000).hexdigest()
        assert lake.get_run(run.run_id).inputs == [di]
        assert lake.load_input(run.run_id) == uri  # digest checked


def test_fluent_log_input(fluent_lake):
    _features(fluent_lake.store.catalog)
    with lakeml.start_run(experiment="lineage") as run:
        di = lakeml.log_input(table="analytics.churn_features", role="train")
    assert fluent_lake.get_run(run.id).inputs == [di]


def test_bad_inputs(lake, tmp_path):
    run = lake.create_run("lineage")
    with pytest.raises(NotFoundError, match="does not exist"):
        lake.log_input(run.run_id, table="analytics.nope")
    with pytest.raises(InvalidInputError, match="namespace.table"):
        lake.log_input(run.run_id, table="no_namespace")
    with pytest.raises(InvalidInputError, match="exactly one"):
        lake.log_input(run.run_id, table="a.b", path="x")
    with pytest.raises(NotFoundError, match="does not exist"):
        lake.log_input(run.run_id, path=str(tmp_path / "missing.csv"))
    lake.store.catalog.create_namespace("empty_ns")
    lake.store.catalog.create_table("empty_ns.t", schema=pa.schema([("a", pa.int64())]))
    with pytest.raises(NotFoundError, match="empty"):
        lake.log_input(run.run_id, table="empty_ns.t")
    with pytest.raises(NotFoundError, match="no input"):
        lake.load_input(run.run_id)
