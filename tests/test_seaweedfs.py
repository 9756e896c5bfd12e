"""Integration with a real SeaweedFS: its Iceberg REST catalog for the tables, its S3 for artifacts."""

from __future__ import annotations

import hashlib
import os

import pyarrow as pa
import pytest

import lakeml
from lakeml import RunStatus

pytestmark = pytest.mark.seaweedfs


@pytest.fixture
def seaweed_lake(seaweed_table_bucket):
    server, table_bucket = seaweed_table_bucket
    bucket = server.create_bucket(f"art-{table_bucket}")
    props = {**server.catalog_props(table_bucket), "lakeml.artifact-root": f"s3://{bucket}/artifacts"}
    lake = lakeml.connect(commit_interval=0.2, commit_deadline=60, **props)
    lakeml.set_lake(lake)
    yield server, props, lake
    lakeml.set_lake(None)
    lake.close()


def test_full_run_through_the_rest_catalog(seaweed_lake, tmp_path):
    from pyiceberg.catalog import load_catalog

    server, props, lake = seaweed_lake
    # a feature table in the same catalog, the run's input
    cat = lake.store.catalog
    cat.create_namespace("analytics")
    features = pa.table({"id": pa.array(range(4), pa.int64()), "x": [0.1, 0.2, 0.3, 0.4]})
    ftbl = cat.create_table("analytics.churn_features", schema=features.schema)
    ftbl.append(features)
    snap = ftbl.current_snapshot().snapshot_id
    model = tmp_path / "model.pkl"
    model.write_bytes(os.urandom(5000))

    with lakeml.start_run(experiment="churn", run_name="xgb-depth6", tags={"team": "growth"}) as run:
        lakeml.log_params({"lr": 0.1, "max_depth": 6})
        lakeml.log_input(table="analytics.churn_features", role="train")
        for step in range(2000):
            lakeml.log_metric("loss", 1.0 / (step + 1), step=step)
        lakeml.log_metric("auc", float("nan"))
        lakeml.log_artifact(str(model))

    got = lake.get_run(run.id)
    assert got.status is RunStatus.FINISHED
    assert (got.params, got.tags) == ({"lr": "0.1", "max_depth": "6"}, {"team": "growth"})
    assert got.metrics["loss"] == 1.0 / 2000
    assert [(i.table, i.snapshot_id) for i in got.inputs] == [("analytics.churn_features", snap)]
    df = lake.search_runs("churn", "params.max_depth = '6' AND metrics.loss < 0.01")
    assert df["run_id"].to_list() == [run.id]
    assert lake.get_metric_history(run.id, "loss").height == 2000

    # the artifact is an object in the normal bucket, recorded with its digest
    out = lake.download_artifacts(run.id, "model.pkl", tmp_path / "dl")
    assert open(out, "rb").read() == model.read_bytes()
    keys = [o["Key"] for o in server.client().list_objects_v2(Bucket=props["lakeml.artifact-root"][5:].split("/")[0])
            ["Contents"]]
    assert keys == [f"artifacts/{got.experiment_id}/{run.id}/model.pkl"]

    # a plain pyiceberg reader of the REST catalog sees everything
    plain = load_catalog("plain", **{k: v for k, v in props.items() if not k.startswith("lakeml.")})
    metrics = plain.load_table("lakeml.metrics").scan(row_filter=f"run_id == '{run.id}'").to_arrow()
    assert metrics.num_rows == 2001
    arts = plain.load_table("lakeml.artifacts").scan().to_arrow().to_pylist()
    assert [(a["path"], a["size"], a["sha256"]) for a in arts] == \
        [("model.pkl", 5000, hashlib.sha256(model.read_bytes()).hexdigest())]
    runs = plain.load_table("lakeml.runs").scan().to_arrow()
    assert sorted(runs["status"].to_pylist()) == ["FINISHED", "RUNNING"]

    # lineage: the exact rows, after the table moved on
    ftbl.append(pa.table({"id": pa.array([9], pa.int64()), "x": [9.0]}))
    assert lake.load_input(run.id).num_rows == 4
