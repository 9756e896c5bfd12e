"""The registry on SeaweedFS's Iceberg REST catalog: the server enforces the compare-and-swap
(a stale append is refused), and concurrent processes still get gap-free version numbers."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

import lakeml
from lakeml.errors import GateError
from tests.test_registry import assert_stale_append_refused
from tests.test_registry_concurrency import check, run_workers

pytestmark = pytest.mark.seaweedfs


@pytest.fixture
def rest_lake(seaweed_table_bucket):
    server, table_bucket = seaweed_table_bucket
    bucket = server.create_bucket(f"art-{table_bucket}")
    lake = lakeml.connect(commit_interval=0.2, commit_deadline=60, **server.catalog_props(table_bucket),
                          **{"lakeml.artifact-root": f"s3://{bucket}/artifacts"})
    yield lake
    lake.close()


def test_stale_append_is_refused_by_the_rest_catalog(rest_lake):
    lake = rest_lake
    run = lake.create_run("rest")
    lake.log_metric(run.id, "val_auc", 0.8)
    lake.log_model(run.id, LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
    assert lake.register_model("churn", run_id=run.id).version == 1
    lake.set_gates("churn", min_metrics={"val_auc": 0.9}, aliases=["champion"])
    with pytest.raises(GateError):
        lake.set_alias("churn", "champion", 1)
    assert lake.load_model("models:/churn/1").predict([[1.0]]).tolist() == [1]
    assert_stale_append_refused(lake)


def test_concurrent_registration_on_the_rest_catalog(rest_lake, tmp_path):
    versions, _ = run_workers(rest_lake, tmp_path, procs=3, each=4, alias_every=2)
    check(rest_lake, versions, 12)
