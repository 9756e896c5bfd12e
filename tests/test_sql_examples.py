"""Each example query of sql/examples/ runs on a real lake and answers its question."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

import lakeml
from lakeml.query.views import sql_dir

EXAMPLES = sorted((sql_dir() / "examples").glob("*.sql"))
DAY1 = int(datetime(2026, 3, 2, 9, tzinfo=timezone.utc).timestamp() * 1000)
DAY2 = DAY1 + 86_400_000


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    lake = lakeml.connect(warehouse=tmp_path_factory.mktemp("ex") / "wh", commit_interval=0.2)
    cat = lake.store.catalog
    cat.create_namespace("sales")
    tbl = cat.create_table("sales.features", schema=pa.schema([("id", pa.int64())]))
    tbl.append(pa.table({"id": pa.array([1, 2], pa.int64())}))
    ids = {}
    for i, (exp, depth, lr, auc, day) in enumerate([
            ("churn", 3, "0.1", 0.70, DAY1), ("churn", 6, "0.1", 0.80, DAY1), ("churn", 9, "0.1", 0.82, DAY2),
            ("churn", 6, "0.3", 0.79, DAY2), ("fraud", 4, "0.1", 0.91, DAY1), ("fraud", 8, "0.1", 0.93, DAY2)]):
        r = lake.create_run(exp, run_name=f"{exp}-{i}", start_time_ms=day + i)
        lake.log_params(r.run_id, {"max_depth": depth, "lr": lr})
        lake.log_metric(r.run_id, "auc", auc - 0.1, step=0)
        lake.log_metric(r.run_id, "auc", auc, step=1)
        if i < 2:
            lake.log_input(r.run_id, table="sales.features")
        lake.set_terminated(r.run_id, end_time_ms=day + i + 3_600_000)
        ids[f"{exp}-{i}"] = r.run_id
    bad = lake.create_run("churn", run_name="crashed", start_time_ms=DAY2 + 99)
    lake.set_terminated(bad.run_id, "FAILED", end_time_ms=DAY2 + 100)
    lake.snapshot = tbl.current_snapshot().snapshot_id
    lake.ids = ids
    yield lake
    lake.close()


def run_example(lake, name, **params):
    return lake.sql((sql_dir() / "examples" / f"{name}.sql").read_text(), params=params or None)


def test_there_are_the_four_examples():
    assert {p.stem for p in EXAMPLES} >= {"best_run_per_experiment", "param_sensitivity", "runs_on_snapshot",
                                          "experiments_over_time"}


def test_best_run_per_experiment(lake):
    df = run_example(lake, "best_run_per_experiment", metric="auc")
    assert df.select("experiment", "run_name").rows() == [("churn", "churn-2"), ("fraud", "fraud-5")]
    assert df["best_value"].to_list() == pytest.approx([0.82, 0.93])


def test_param_sensitivity(lake):
    df = run_example(lake, "param_sensitivity", metric="auc")
    churn_depth = df.filter((df["experiment"] == "churn") & (df["param"] == "max_depth"))
    assert churn_depth["value"].to_list() == ["9", "6", "3"]  # by mean auc
    assert churn_depth["runs"].to_list() == [1, 2, 1]
    assert churn_depth["param_effect"][0] == pytest.approx(0.12)
    assert df["param_effect"].to_list() == sorted(df["param_effect"].to_list(), reverse=True)


def test_runs_on_snapshot(lake):
    df = run_example(lake, "runs_on_snapshot", table="sales.features", snapshot_id=lake.snapshot)
    assert sorted(df["run_name"]) == ["churn-0", "churn-1"]
    assert run_example(lake, "runs_on_snapshot", table="sales.features", snapshot_id=1).height == 0


def test_experiments_over_time(lake):
    df = run_example(lake, "experiments_over_time")
    rows = {(r["experiment"], r["day"].day): r for r in df.iter_rows(named=True)}
    assert rows[("churn", 2)]["runs"] == 2 and rows[("churn", 2)]["finished_hours"] == pytest.approx(2.0)
    assert rows[("churn", 3)]["runs"] == 3 and rows[("churn", 3)]["failed"] == 1
    assert rows[("fraud", 3)]["finished"] == 1


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_runs_read_only(lake, path):
    text = path.read_text()
    params = {k: v for k, v in {"metric": "auc", "table": "sales.features", "snapshot_id": lake.snapshot}.items()
              if f"${k}" in text}
    assert lake.sql(text, params=params or None).width > 0
