"""Lineage: model version -> run -> params, metrics, code version -> the exact input snapshot, which
still loads the training rows after the source table was appended to and had rows deleted."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo
from sklearn.linear_model import LogisticRegression

from lakeml.errors import InvalidInputError, NotFoundError

FEATURES = "analytics.churn_features"


def q(lake, sql: str) -> list[tuple]:
    """Rows of a query through lake.sql (DuckDB over the tables and the sql/ views), as tuples."""
    t = lake.sql_arrow(sql)
    return list(zip(*(c.to_pylist() for c in t.columns))) if t.num_columns else []


def feature_table(lake):
    """A real Iceberg table in the lake's catalog, outside the lakeml namespace."""
    cat = lake.store.catalog
    try:
        cat.create_namespace("analytics")
    except Exception:  # noqa: BLE001 - already there
        pass
    schema = pa.schema([("customer_id", pa.int64()), ("tenure", pa.float64()), ("churned", pa.int64())])
    tbl = cat.create_table(FEATURES, schema)
    tbl.append(pa.table({"customer_id": list(range(40)), "tenure": [float(i % 7) for i in range(40)],
                         "churned": [int(i % 7 < 3) for i in range(40)]}, schema=schema))
    return tbl


def train_on(lake, tbl):
    """A run that reads the current snapshot, trains on it, logs everything and registers the model."""
    run = lake.create_run("churn", run_name="logreg")
    lake.log_input(run.id, table=FEATURES, role="train")
    data = tbl.scan().to_arrow()
    X = [[t] for t in data["tenure"].to_pylist()]
    clf = LogisticRegression(C=0.5).fit(X, data["churned"].to_pylist())
    lake.log_params(run.id, {"C": 0.5, "features": "tenure"})
    lake.log_metric(run.id, "train_acc", clf.score(X, data["churned"].to_pylist()))
    lake.log_model(run.id, clf, "model")
    lake.set_terminated(run.id, "FINISHED")
    return run.id, data


def test_lineage_returns_the_exact_snapshot_that_reproduces_the_training_rows(lake):
    tbl = feature_table(lake)
    snap = tbl.current_snapshot().snapshot_id
    run_id, trained_on = train_on(lake, tbl)
    mv = lake.register_model("churn", run_id=run_id)
    lake.set_alias("churn", "champion", mv.version)
    lake.record_deployment("churn", mv.version, environment="prod", service="scoring-api", service_version="2.4.1")

    # the source table moves on: new rows, and some training rows deleted
    tbl.append(pa.table({"customer_id": [100, 101], "tenure": [9.0, 10.0], "churned": [0, 0]},
                        schema=tbl.schema().as_arrow()))
    tbl.delete(EqualTo("customer_id", 3))
    tbl = lake.store.catalog.load_table(FEATURES)
    now = tbl.scan().to_arrow()
    assert now.num_rows == 41 and 3 not in now["customer_id"].to_pylist()

    lin = lake.model_lineage("churn@champion")
    assert (lin.model_name, lin.version, lin.run_id) == ("churn", 1, run_id)
    assert lin.params == {"C": "0.5", "features": "tenure"} and "train_acc" in lin.metrics
    assert lin.git_commit == lake.get_run(run_id).git_commit  # code version as the run recorded it
    assert lin.aliases == ["champion"] and [d.environment for d in lin.deployments] == ["prod"]
    [inp] = lin.inputs
    assert (inp.table, inp.snapshot_id, inp.role) == (FEATURES, snap, "train")
    assert inp.snapshot_id != tbl.current_snapshot().snapshot_id

    # the exact rows come back, though the table changed
    again = lake.load_input(lin.run_id, FEATURES)
    key = [("customer_id", "ascending")]
    assert again.sort_by(key).equals(trained_on.sort_by(key))
    assert 3 in again["customer_id"].to_pylist()

    # and the reverse question
    used = lake.models_trained_on(FEATURES, snapshot_id=snap)
    assert [(t.model_name, t.version, t.snapshot_id) for t in used] == [("churn", 1, snap)]
    assert used[0].aliases == ["champion"] and used[0].environments == ["prod"]
    assert lake.models_trained_on(FEATURES, snapshot_id=tbl.current_snapshot().snapshot_id) == []
    assert len(lake.models_trained_on(FEATURES)) == 1

    # "what is in production and what was it trained on", without a join
    [(env, uri, trained, inputs, commit)] = q(
        lake, "SELECT environment, model_uri, trained_on, training_inputs, git_commit FROM lakeml.deployments_current")
    assert (env, uri) == ("prod", "models:/churn/1")
    assert trained == f"train: {FEATURES}@{snap}" and inputs[0]["snapshot_id"] == snap
    assert commit == lin.git_commit
    row = q(lake, "SELECT input_table, input_snapshot_id, params['C'], metrics['train_acc'], deployed_now, "
                  "ever_deployed FROM lakeml.model_lineage")
    assert row == [(FEATURES, snap, "0.5", lin.metrics["train_acc"], "prod/scoring-api", True)]


def test_lineage_bad_input(lake):
    with pytest.raises(InvalidInputError, match="namespace.table"):
        lake.models_trained_on("no_namespace")
    with pytest.raises(NotFoundError, match="does not exist"):
        lake.models_trained_on("analytics.nothing_here")
    with pytest.raises(NotFoundError, match="no registered model"):
        lake.model_lineage("ghost", 1)


def test_versions_without_inputs_still_have_a_lineage_row(file_lake):
    lake = file_lake
    run = lake.create_run("x")
    lake.log_model(run.id, lambda rows: [0 for _ in rows], "model", pip_requirements=["numpy"])
    lake.register_model("noinput", run_id=run.id)
    rows = q(lake, "SELECT model_name, version, input_table, ever_deployed, flavor FROM lakeml.model_lineage")
    assert rows == [("noinput", 1, None, False, "python")]
