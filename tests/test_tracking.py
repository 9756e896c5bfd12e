"""The explicit client: runs, params, metrics and tags, written and read back, on file:// and on S3."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

import lakeml
from lakeml import ConflictError, Metric, Param, RunStatus, RunTag
from tests.workers.lakes import lake_spec, plain_catalog, reopen


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def test_run_lifecycle_and_attributes(lake):
    run = lake.create_run("churn", run_name="xgb-depth6", tags={"team": "growth"})
    assert run.status is RunStatus.RUNNING and len(run.run_id) == 32
    got = lake.get_run(run.run_id)
    assert got.status is RunStatus.RUNNING and got.end_time is None
    assert (got.experiment_name, got.run_name, got.tags) == ("churn", "xgb-depth6", {"team": "growth"})
    assert got.experiment_id == lakeml.client.lake.experiment_id_for("churn")
    assert got.user and got.source and got.start_time is not None
    assert got.artifact_uri.endswith(f"/{got.experiment_id}/{run.run_id}")

    lake.set_terminated(run.run_id)
    done = lake.get_run(run.run_id)
    assert done.status is RunStatus.FINISHED and done.end_time >= done.start_time and done.error is None
    assert [e.name for e in lake.list_experiments()] == ["churn"]


def test_params_are_write_once_even_across_clients(lake):
    run = lake.create_run("p")
    lake.log_param(run.run_id, "lr", 0.1)
    lake.log_params(run.run_id, {"lr": 0.1, "max_depth": 6, "name": "xgb", "none": None, "flag": True})
    with pytest.raises(ConflictError, match=r"'lr'.*'0\.1'.*write-once.*'0\.2'"):
        lake.log_param(run.run_id, "lr", 0.2)
    lake.flush()
    assert lake.get_run(run.run_id).params == {"lr": "0.1", "max_depth": "6", "name": "xgb", "none": "None",
                                               "flag": "True"}

    other = reopen(lake)  # a second client only knows what is in the tables
    try:
        other.log_param(run.run_id, "max_depth", 6)
        with pytest.raises(ConflictError, match="max_depth"):
            other.log_param(run.run_id, "max_depth", 7)
        with pytest.raises(ConflictError):  # a batch with one bad param buffers nothing
            other.log_params(run.run_id, {"new_key": 1, "name": "lgbm"})
        other.flush()
    finally:
        other.close()
    assert "new_key" not in lake.get_run(run.run_id).params
    rows = lake.engine.arrow("SELECT count(*) AS n FROM lakeml.params WHERE run_id = $1 AND key = 'lr'",
                             [run.run_id], tables=["params"]).to_pylist()
    assert rows == [{"n": 1}], "the same value logged again must not add a row"


def test_metrics_with_step_and_timestamp(lake):
    run = lake.create_run("m")
    t0 = 1_700_000_000_000
    for step in range(50):
        lake.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step, timestamp=t0 + step)
    lake.log_metrics(run.run_id, {"acc": 0.5, "auc": 0.75}, step=3, timestamp=t0 + 99)
    lake.log_metric(run.run_id, "int_value", 3)  # ints become floats, step defaults to 0
    hist = lake.get_metric_history(run.run_id, "loss")
    assert hist["step"].to_list() == list(range(50))
    assert hist["value"].to_list() == [1.0 / (s + 1) for s in range(50)]
    assert [_ms(t) for t in hist["timestamp"].to_list()] == [t0 + s for s in range(50)]
    everything = lake.get_metric_history(run.run_id)
    assert sorted(set(everything["key"].to_list())) == ["acc", "auc", "int_value", "loss"]
    got = lake.get_run(run.run_id)
    assert got.metrics == {"loss": 1.0 / 50, "acc": 0.5, "auc": 0.75, "int_value": 3.0}
    acc = lake.get_metric_history(run.run_id, "acc").row(0, named=True)
    assert (acc["step"], acc["value"], _ms(acc["timestamp"])) == (3, 0.5, t0 + 99)


def test_latest_metric_is_the_highest_step_not_the_last_logged(lake):
    run = lake.create_run("m")
    lake.log_metric(run.run_id, "loss", 0.1, step=10)
    lake.log_metric(run.run_id, "loss", 0.9, step=2)
    assert lake.get_run(run.run_id).metrics["loss"] == 0.1


def test_nan_and_infinities_are_stored_faithfully(lake):
    run = lake.create_run("nan")
    special = {"nan": float("nan"), "pinf": float("inf"), "ninf": float("-inf"), "tiny": 5e-324,
               "negzero": -0.0, "big": 1.7976931348623157e308}
    for i, (k, val) in enumerate(special.items()):
        lake.log_metric(run.run_id, k, val, step=i)
    lake.flush()

    def same(a: float, b: float) -> bool:
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))

    # DuckDB
    hist = lake.get_metric_history(run.run_id)
    got = dict(zip(hist["key"].to_list(), hist["value"].to_list()))
    assert all(same(got[k], special[k]) for k in special), got
    # plain pyiceberg, no lakeml code involved in the read
    tbl = plain_catalog(lake_spec(lake)).load_table("lakeml.metrics")
    rows = tbl.scan(row_filter=f"run_id == '{run.run_id}'").to_arrow().to_pylist()
    got = {r["key"]: r["value"] for r in rows}
    assert len(rows) == len(special) and all(same(got[k], special[k]) for k in special), got


def test_tags_set_overwrite_delete(lake):
    run = lake.create_run("t", tags={"a": "1"})
    lake.set_tag(run.run_id, "b", 2)
    lake.set_tags(run.run_id, {"c": "x", "a": "overwritten"})
    lake.delete_tag(run.run_id, "b")
    assert lake.get_run(run.run_id).tags == {"a": "overwritten", "c": "x"}
    lake.set_tag(run.run_id, "b", "back")
    assert lake.get_run(run.run_id).tags == {"a": "overwritten", "b": "back", "c": "x"}


def test_log_batch_with_entities(lake):
    run = lake.create_run("batch")
    lake.log_batch(run.run_id, metrics=[Metric("m", 1.5, step=1, timestamp=1_700_000_000_000),
                                        Metric("m", 2.5, step=2)],
                   params=[Param("p", 1)], tags=[RunTag("t", "v")])
    got = lake.get_run(run.run_id)
    assert (got.params, got.tags, got.metrics) == ({"p": "1"}, {"t": "v"}, {"m": 2.5})
    assert lake.get_metric_history(run.run_id, "m")["value"].to_list() == [1.5, 2.5]


def test_columnar_log_batch(lake):
    np = pytest.importorskip("numpy")
    pl = pytest.importorskip("polars")
    run = lake.create_run("columns")
    n = 20_000
    values = np.linspace(0, 1, n)
    values[7] = np.nan
    lake.log_batch(run.run_id, metrics={"key": "loss", "value": values, "step": np.arange(n)})
    lake.log_batch(run.run_id, metrics=pl.DataFrame({"key": ["a", "b"], "value": [1, 2], "step": [5, 6],
                                                     "timestamp": [1_700_000_000_000, 1_700_000_000_001]}))
    hist = lake.get_metric_history(run.run_id, "loss")
    assert hist.height == n and hist["step"].to_list() == list(range(n))
    got = hist["value"].to_numpy()
    assert np.isnan(got[7]) and np.array_equal(np.delete(got, 7), np.delete(values, 7))
    b = lake.get_metric_history(run.run_id, "b").row(0, named=True)
    assert (b["value"], b["step"], _ms(b["timestamp"])) == (2.0, 6, 1_700_000_000_001)
    for bad in ({"key": "x", "value": ["a", "b"]}, [Metric("x", "a")]):  # columns and points: one rule, one message
        with pytest.raises(lakeml.InvalidInputError, match="metric 'x' got str 'a'; metric values must be numbers"):
            lake.log_batch(run.run_id, metrics=bad)
    with pytest.raises(lakeml.InvalidInputError, match="invalid metric key"):
        lake.log_batch(run.run_id, metrics={"key": ["ok", "../bad"], "value": [1.0, 2.0]})
    with pytest.raises(lakeml.InvalidInputError, match="null"):
        lake.log_batch(run.run_id, metrics={"key": "x", "value": [1.0, None]})
    for bad in ({"key": "x", "value": [1.0], "step": [0.5]}, [Metric("x", 1.0, step=0.5)]):
        with pytest.raises(lakeml.InvalidInputError, match="step of metric 'x' must be (an|one) integer"):
            lake.log_batch(run.run_id, metrics=bad)
    assert lake.get_metric_history(run.run_id, "x").height == 0


def test_nested_runs_explicit(lake):
    parent = lake.create_run("nest")
    child = lake.create_run("nest", parent_run_id=parent.run_id)
    got = lake.get_run(child.run_id)
    assert got.parent_run_id == parent.run_id and got.tags["lakeml.parentRunId"] == parent.run_id
    df = lake.search_runs("nest", filter_string=f"attributes.parent_run_id = '{parent.run_id}'")
    assert df["run_id"].to_list() == [child.run_id]


@pytest.fixture
def populated(lake):
    """Six runs in two experiments with known params, metrics, tags and statuses."""
    specs = [
        ("churn", "xgb-1", {"model": "xgb", "depth": 4}, {"auc": 0.81, "loss": 0.5}, {"team": "growth"}, "FINISHED"),
        ("churn", "xgb-2", {"model": "xgb", "depth": 6}, {"auc": 0.86, "loss": 0.4}, {"team": "growth"}, "FINISHED"),
        ("churn", "lgbm-1", {"model": "lgbm", "depth": 6}, {"auc": 0.91, "loss": 0.3}, {"team": "risk"}, "FAILED"),
        ("churn", "lr-1", {"model": "lr"}, {"auc": 0.70}, {}, "KILLED"),
        ("churn", "running", {"model": "xgb"}, {}, {"team": "growth"}, None),
        ("other", "xgb-other", {"model": "xgb", "depth": 6}, {"auc": 0.99}, {"team": "growth"}, "FINISHED"),
    ]
    ids = {}
    for i, (exp, name, params, metrics, tags, status) in enumerate(specs):
        run = lake.create_run(exp, run_name=name, tags=tags, start_time_ms=1_700_000_000_000 + i * 1000)
        lake.log_params(run.run_id, params)
        for k, val in metrics.items():
            lake.log_metric(run.run_id, k, val, step=1)
        if status:
            lake.set_terminated(run.run_id, status, flush=False)
        ids[name] = run.run_id
    lake.flush()
    return lake, ids


def test_search_runs_filters(populated):
    lake, ids = populated

    def names(df):
        return sorted(df["run_name"].to_list())

    import polars as pl

    everything = lake.search_runs()
    assert isinstance(everything, pl.DataFrame) and everything.height == 6
    assert {"params.model", "metrics.auc", "tags.team", "status"} <= set(everything.columns)
    assert names(lake.search_runs("churn")) == ["lgbm-1", "lr-1", "running", "xgb-1", "xgb-2"]
    assert names(lake.search_runs(["churn", "other"], "metrics.auc > 0.85")) == ["lgbm-1", "xgb-2", "xgb-other"]
    assert names(lake.search_runs("churn", "params.model = 'xgb' AND params.depth = '6'")) == ["xgb-2"]
    assert names(lake.search_runs("churn", "tags.team = 'growth'")) == ["running", "xgb-1", "xgb-2"]
    assert names(lake.search_runs("churn", "tags.team != 'growth'")) == ["lgbm-1"]
    assert names(lake.search_runs("churn", "attributes.status = 'FINISHED'")) == ["xgb-1", "xgb-2"]
    assert names(lake.search_runs("churn", "attributes.status IN ('FAILED', 'KILLED')")) == ["lgbm-1", "lr-1"]
    assert names(lake.search_runs("churn", "params.model NOT IN ('xgb')")) == ["lgbm-1", "lr-1"]
    assert names(lake.search_runs(None, "attributes.run_name LIKE 'xgb%'")) == ["xgb-1", "xgb-2", "xgb-other"]
    assert names(lake.search_runs(None, "attributes.run_name ILIKE 'XGB-_'")) == ["xgb-1", "xgb-2"]
    assert names(lake.search_runs("churn", "metrics.loss <= 0.4 AND metrics.auc >= 0.86")) == ["lgbm-1", "xgb-2"]
    assert names(lake.search_runs("churn", "params.depth IS NULL")) == ["lr-1", "running"]
    assert names(lake.search_runs("churn", f"attributes.run_id = '{ids['lr-1']}'")) == ["lr-1"]
    assert lake.search_runs("churn", "metrics.auc > 2").height == 0


def test_search_runs_order_and_paging(populated):
    lake, _ = populated
    by_auc = lake.search_runs("churn", order_by=["metrics.auc DESC"])["run_name"].to_list()
    assert by_auc == ["lgbm-1", "xgb-2", "xgb-1", "lr-1", "running"]  # no auc sorts last
    asc = lake.search_runs("churn", "metrics.auc > 0", order_by=["metrics.auc"])["run_name"].to_list()
    assert asc == ["lr-1", "xgb-1", "xgb-2", "lgbm-1"]
    newest_first = lake.search_runs("churn")["run_name"].to_list()
    assert newest_first == ["running", "lr-1", "lgbm-1", "xgb-2", "xgb-1"]  # default: start_time DESC
    pages = [lake.search_runs("churn", order_by=["attributes.run_name"], max_results=2, offset=o)["run_name"]
             .to_list() for o in (0, 2, 4)]
    assert pages == [["lgbm-1", "lr-1"], ["running", "xgb-1"], ["xgb-2"]]
    by_param = lake.search_runs("churn", "params.depth IS NOT NULL",
                                order_by=["params.depth DESC", "metrics.auc ASC"])["run_name"].to_list()
    assert by_param == ["xgb-2", "lgbm-1", "xgb-1"]


def test_data_survives_a_new_client(lake):
    run = lake.create_run("persist", run_name="r")
    lake.log_param(run.run_id, "p", "v")
    lake.log_metric(run.run_id, "m", 1.0, step=3)
    lake.set_terminated(run.run_id, "FAILED", error="ValueError: boom", wait=True)  # committed on return
    other = reopen(lake)
    try:
        got = other.get_run(run.run_id)
        assert (got.status, got.error, got.params, got.metrics) == (RunStatus.FAILED, "ValueError: boom",
                                                                    {"p": "v"}, {"m": 1.0})
        assert other.search_runs("persist")["run_id"].to_list() == [run.run_id]
    finally:
        other.close()


def test_every_status_change_is_an_appended_event(lake):
    run = lake.create_run("events")
    lake.set_terminated(run.run_id, "KILLED", flush=False)
    lake.set_terminated(run.run_id, "FINISHED")
    events = lake.engine.arrow("SELECT status FROM lakeml.runs WHERE run_id = $1 ORDER BY event_time, event_seq",
                               [run.run_id], tables=["runs"])["status"].to_pylist()
    assert events == ["RUNNING", "KILLED", "FINISHED"]
    assert lake.get_run(run.run_id).status is RunStatus.FINISHED


def test_read_your_writes_without_explicit_flush(lake):
    slow = reopen(lake, commit_interval=3600)  # its commit thread stays asleep: only the read can commit
    try:
        run = slow.create_run("ryw")
        slow.log_metric(run.run_id, "m", 2.0)
        assert slow.committer.pending_rows() > 0 and slow.committer.stats.commits == 0
        assert slow.get_run(run.run_id).metrics == {"m": 2.0}
        assert slow.committer.pending_rows() == 0 and slow.committer.stats.commits > 0
    finally:
        slow.close()


def test_start_time_given_explicitly(lake):
    run = lake.create_run("st", start_time_ms=1_600_000_000_000)
    lake.set_terminated(run.run_id, end_time_ms=1_600_000_005_000)
    got = lake.get_run(run.run_id)
    assert got.start_time == datetime.fromtimestamp(1_600_000_000, tz=timezone.utc)
    assert got.end_time == datetime.fromtimestamp(1_600_000_005, tz=timezone.utc)
