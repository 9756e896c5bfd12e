"""lake.sql over real Iceberg tables: the issue's queries, the views of sql/, the engine's copies."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from lakeml.query.runs import _as_dict
from lakeml.query.views import sql_dir, view_defs


def populate(lake) -> dict[str, str]:
    """Two experiments; churn has three finished runs and one failed run; returns run ids by name."""
    ids = {}
    for i, depth in enumerate([3, 5, 8]):
        r = lake.create_run("churn", run_name=f"xgb-{depth}", tags={"team": "growth"})
        lake.log_params(r.run_id, {"max_depth": depth, "lr": 0.1})
        for step in range(10):
            lake.log_metric(r.run_id, "auc", 0.5 + 0.04 * depth * (step + 1) / 10, step=step)
            lake.log_metric(r.run_id, "loss", 1.0 / (depth + step + 1), step=step)
        lake.set_terminated(r.run_id, flush=False)
        ids[f"xgb-{depth}"] = r.run_id
    bad = lake.create_run("churn", run_name="broken")
    lake.log_params(bad.run_id, {"max_depth": 99})
    lake.log_metric(bad.run_id, "auc", 0.99, step=0)
    lake.set_terminated(bad.run_id, "FAILED", error="boom", flush=False)
    ids["broken"] = bad.run_id
    other = lake.create_run("fraud", run_name="lgbm")
    lake.log_metric(other.run_id, "auc", 0.7)
    lake.set_terminated(other.run_id)
    ids["lgbm"] = other.run_id
    lake.flush()
    return ids


def test_issue_example_query(lake):
    populate(lake)
    df = lake.sql("""
      SELECT p.value AS max_depth, max(m.value) AS best_auc
      FROM lakeml.metrics m JOIN lakeml.params p USING (run_id)
      WHERE m.key = 'auc' AND p.key = 'max_depth'
      GROUP BY 1 ORDER BY 2 DESC""")
    assert isinstance(df, pl.DataFrame)
    assert df["max_depth"].to_list() == ["99", "8", "5", "3"]
    assert df["best_auc"][1] == pytest.approx(0.5 + 0.04 * 8)
    arrow = lake.sql_arrow("SELECT count(*) AS n FROM lakeml.runs_latest")
    assert isinstance(arrow, pa.Table) and arrow["n"][0].as_py() == 5
    assert df.to_arrow().num_rows == 4
    assert df.arrow().equals(df.to_arrow()) and isinstance(df.arrow(), pa.Table)  # the issue's ".arrow()"


def test_params_positional_and_named(file_lake):
    ids = populate(file_lake)
    df = file_lake.sql("SELECT run_name FROM lakeml.runs_latest WHERE run_id = $1", params=[ids["xgb-5"]])
    assert df["run_name"].to_list() == ["xgb-5"]
    df = file_lake.sql("SELECT run_name FROM lakeml.runs_latest WHERE status = $s ORDER BY run_name",
                       params={"s": "FAILED"})
    assert df["run_name"].to_list() == ["broken"]


def test_views_of_sql_folder(lake):
    ids = populate(lake)
    runs = lake.sql("SELECT run_name, status, duration_s FROM lakeml.runs_latest ORDER BY run_name")
    assert runs["run_name"].to_list() == ["broken", "lgbm", "xgb-3", "xgb-5", "xgb-8"]
    assert dict(zip(runs["run_name"], runs["status"]))["broken"] == "FAILED"

    s = lake.sql("SELECT run_name, experiment, params, metrics['auc'] AS auc, metrics_min['loss'] AS lmin, "
                 "metrics_max['loss'] AS lmax, tags['team'] AS team FROM lakeml.run_summary "
                 "WHERE run_id = $1", params=[ids["xgb-8"]]).row(0, named=True)
    assert s["experiment"] == "churn" and s["team"] == "growth"
    assert _as_dict(s["params"]) == {"lr": "0.1", "max_depth": "8"}
    assert s["auc"] == pytest.approx(0.5 + 0.04 * 8)
    assert s["lmin"] == pytest.approx(1 / 18) and s["lmax"] == pytest.approx(1 / 9)

    board = lake.sql("SELECT run_name, rank_desc FROM lakeml.leaderboard WHERE experiment = 'churn' "
                     "AND metric = 'auc' ORDER BY rank_desc")
    assert board["run_name"].to_list() == ["xgb-8", "xgb-5", "xgb-3"]  # the FAILED run is left out
    loss = lake.sql("SELECT run_name FROM lakeml.leaderboard WHERE experiment = 'churn' AND metric = 'loss' "
                    "AND rank_asc = 1")
    assert loss["run_name"].to_list() == ["xgb-8"]

    lineage = lake.sql("SELECT * FROM lakeml.dataset_lineage")
    assert lineage.height == 0 and "snapshot_id" in lineage.columns


def test_every_view_file_loads(file_lake):
    """Every view of sql/ is created on a fresh lake (empty tables give typed empty views)."""
    defs = view_defs()
    names = {d.name for d in defs}
    assert {"lakeml.runs_latest", "lakeml.run_summary", "lakeml.leaderboard", "lakeml.metric_curves",
            "lakeml.dataset_lineage"} <= names
    file_lake.engine.refresh()
    assert file_lake.engine.skipped_views == {}
    for name in sorted(names):
        df = file_lake.sql(f"SELECT * FROM {name}")
        assert df.height == 0, name
    types = dict(file_lake.engine.con.execute("DESCRIBE lakeml.metrics").fetchall()[i][:2]
                 for i in range(5))
    assert types["value"] == "DOUBLE" and types["timestamp"] == "TIMESTAMP WITH TIME ZONE"


def test_view_with_missing_base_table_is_skipped(file_lake, tmp_path, caplog):
    """A view over a table without a contract is logged and skipped; the others still load."""
    from lakeml.query.views import load_views

    (tmp_path / "a_future.sql").write_text("CREATE OR REPLACE VIEW lakeml.future AS SELECT * FROM lakeml.nosuch;\n")
    (tmp_path / "b_ok.sql").write_text("CREATE OR REPLACE VIEW lakeml.ok2 AS SELECT count(*) AS n FROM lakeml.runs;")
    con = file_lake.engine.con
    done, skipped = load_views(con, view_defs(tmp_path))
    assert done == ["lakeml.ok2"] and "lakeml.future" in skipped and "nosuch" in skipped["lakeml.future"]


def test_views_load_in_dependency_order(file_lake, tmp_path):
    from lakeml.query.views import load_views

    (tmp_path / "a.sql").write_text("CREATE OR REPLACE VIEW lakeml.top AS SELECT n + 1 AS m FROM lakeml.base;")
    (tmp_path / "b.sql").write_text("CREATE OR REPLACE VIEW lakeml.base AS SELECT 41 AS n;")
    done, skipped = load_views(file_lake.engine.con, view_defs(tmp_path))
    assert done == ["lakeml.base", "lakeml.top"] and not skipped
    assert file_lake.engine.con.execute("SELECT m FROM lakeml.top").fetchone() == (42,)


def test_engine_copies_match_plain_sql(lake):
    """The in-memory copies and the metric summary hold exactly what the plain views compute."""
    populate(lake)
    lake.sql("SELECT * FROM lakeml.run_summary")  # builds the summary
    r = lake.create_run("churn", run_name="late")  # an incremental append after the copies exist
    for step in range(5):
        lake.log_metric(r.run_id, "auc", 0.1 * step, step=step)
    lake.log_metric(r.run_id, "auc", -1.0, step=2)  # same step again, later timestamp: not the latest
    lake.log_params(r.run_id, {"max_depth": 1})
    lake.set_tag(r.run_id, "team", "a")
    lake.set_tag(r.run_id, "team", "b")
    lake.delete_tag(r.run_id, "team")
    lake.set_terminated(r.run_id, "KILLED")
    lake.flush()
    from lakeml.query.engine import DuckEngine

    plain = DuckEngine(lake.store, cached=False)
    try:
        for view in ("metric_latest", "runs_latest", "params_latest", "tags_latest", "experiments_latest",
                     "run_summary", "leaderboard"):
            a = lake.sql(f"SELECT * FROM lakeml.{view}")
            b = pl.from_arrow(plain.query(f"SELECT * FROM lakeml.{view}"))
            key = [c for c in ("run_id", "experiment_id", "key", "metric") if c in a.columns]
            a, b = a.sort(key), b.sort(key)
            assert a.columns == b.columns and a.height == b.height, view
            assert a.to_dicts() == b.to_dicts(), view
    finally:
        plain.close()
    latest = lake.sql("SELECT value, step, count FROM lakeml.metric_latest WHERE run_id = $1", params=[r.run_id])
    assert latest.row(0) == (pytest.approx(0.4), 4, 6)
    assert lake.sql("SELECT status FROM lakeml.runs_latest WHERE run_id = $1", params=[r.run_id]).item() == "KILLED"
    assert lake.sql("SELECT count(*) FROM lakeml.tags_latest WHERE run_id = $1", params=[r.run_id]).item() == 0


def test_read_your_writes_between_queries(file_lake):
    r = file_lake.create_run("e")
    assert file_lake.sql("SELECT count(*) AS n FROM lakeml.metrics").item() == 0
    file_lake.log_metric(r.run_id, "x", 1.0)
    assert file_lake.sql("SELECT count(*) AS n FROM lakeml.metrics").item() == 1
    file_lake.log_metric(r.run_id, "x", 2.0, step=1)
    assert file_lake.sql("SELECT value FROM lakeml.metric_latest").item() == 2.0


def test_metric_curves_downsample_a_long_series(file_lake):
    """1M steps come back as at most 500 buckets that keep the min, max, mean and last value."""
    import numpy as np

    r = file_lake.create_run("long")
    file_lake.flush()
    n = 1_000_000
    steps = np.arange(n, dtype=np.int64)
    values = np.sin(steps / 1000.0)
    values[123_456] = 5.0  # a spike must survive downsampling
    contract = file_lake.store.contracts["metrics"]
    data = pa.table({"run_id": [r.run_id] * n, "key": ["loss"] * n, "value": values, "step": steps,
                     "timestamp": pa.array(steps + 1_700_000_000_000_000, pa.int64()).cast(pa.timestamp("us", "UTC"))},
                    schema=contract.arrow_schema())
    file_lake.store.table("metrics").append(data)
    curve = file_lake.sql("SELECT * FROM lakeml.metric_curves WHERE run_id = $1 ORDER BY step", params=[r.run_id])
    assert 400 <= curve.height <= 500
    assert curve["points"].sum() == n
    assert curve["value_max"].max() == 5.0
    assert curve["value_min"].min() == pytest.approx(values.min())
    assert curve["value_last"][-1] == pytest.approx(values[-1]) and curve["last_step"][-1] == n - 1
    assert math.isclose(curve["value"].mean(), values.mean(), abs_tol=0.01)


def test_search_runs_keeps_its_shape(lake):
    ids = populate(lake)
    df = lake.search_runs("churn", "params.max_depth != '3' AND metrics.auc > 0.6", order_by=["metrics.auc DESC"])
    assert df["run_name"].to_list() == ["broken", "xgb-8", "xgb-5"]
    assert {"params.max_depth", "params.lr", "metrics.auc", "metrics.loss", "tags.team"} <= set(df.columns)
    assert df.schema["metrics.auc"] == pl.Float64 and df.schema["params.max_depth"] == pl.Utf8
    page = lake.search_runs(["churn", "fraud"], order_by=["attributes.run_name"], max_results=2, offset=1)
    assert page["run_name"].to_list() == ["lgbm", "xgb-3"]
    assert lake.search_runs("churn", "tags.team = 'nobody'").height == 0
    assert lake.get_run(ids["xgb-3"]).metrics["auc"] == pytest.approx(0.5 + 0.12)


def test_metric_history_reads_the_right_files(lake):
    ids = populate(lake)
    for name in ("xgb-3", "xgb-8"):
        h = lake.get_metric_history(ids[name], "auc")
        assert h["step"].to_list() == list(range(10))
    every = lake.get_metric_history(ids["xgb-5"])
    assert every.height == 20 and set(every["key"]) == {"auc", "loss"}
    many = lake.metric_histories([ids["xgb-3"], ids["lgbm"]], "auc")
    counts = dict(many.group_by("run_id").len().iter_rows())
    assert counts == {ids["xgb-3"]: 10, ids["lgbm"]: 1}


def test_sql_files_are_plain_and_documented():
    for path in sorted(sql_dir().glob("*.sql")) + sorted((sql_dir() / "examples").glob("*.sql")):
        text = path.read_text()
        assert text.lstrip().startswith("--"), f"{path.name} should start with a comment saying what it is"


def test_metric_history_across_many_commits(file_lake):
    """Many commits of several runs each: a run's history is found among files whose bounds overlap."""
    ids = []
    for commit in range(5):
        for j in range(40):
            r = file_lake.create_run("many")
            file_lake.log_metric(r.run_id, "x", float(len(ids)), step=commit)
            ids.append(r.run_id)
        file_lake.flush()
    for i, rid in enumerate(ids):
        h = file_lake.get_metric_history(rid)
        assert h.select("key", "value").rows() == [("x", float(i))]
    assert file_lake.get_metric_history(ids[0], "nope").height == 0


def test_one_shot_reader_matches_the_client(lake):
    """``lakeml.read-cache=false`` (what the CLI's read commands use): plain views bound only when a
    query names them, the registry folded through DuckDB, no pyiceberg; the same answers as the client."""
    import dataclasses

    from lakeml.client.lake import Lake
    from lakeml.query.engine import READ_CACHE

    ids = []
    for i, auc in enumerate((0.7, 0.9)):
        r = lake.create_run("cmp", run_name=f"r{i}", tags={"team": "a"})
        lake.log_params(r.run_id, {"depth": i + 2})
        for step in range(3):
            lake.log_metric(r.run_id, "auc", auc - 0.1 * (2 - step), step=step)
        lake.set_terminated(r.run_id)
        ids.append(r.run_id)
    lake.log_model(ids[1], lambda rows: rows, "model")
    lake.register_model("cmp-model", run_id=ids[1])
    lake.set_alias("cmp-model", "champion", 1)
    lake.record_deployment("cmp-model", 1, environment="prod", service="api")
    lake.flush()
    cfg = dataclasses.replace(lake.config, properties={**lake.config.properties, READ_CACHE: "false"})
    with Lake(cfg) as ro:
        assert lake.engine.cached and not ro.engine.cached
        assert ro.search_runs("cmp").sort("run_id").equals(lake.search_runs("cmp").sort("run_id"))
        assert ro.list_experiments() == lake.list_experiments()
        for rid in ids:
            assert ro.get_run(rid) == lake.get_run(rid)
            assert ro.get_metric_history(rid).equals(lake.get_metric_history(rid))
        assert ro.get_model_version("cmp-model@champion") == lake.get_model_version("cmp-model@champion")
        assert ro.get_model("cmp-model") == lake.get_model("cmp-model")
        assert ro.list_deployments("cmp-model") == lake.list_deployments("cmp-model")
        board = "SELECT * FROM lakeml.leaderboard ORDER BY ALL"
        assert ro.sql(board).to_dicts() == lake.sql(board).to_dicts()
        # only what the queries named was bound: the registry projections were never read
        assert "model_aliases" not in ro.engine.tables.bound and "registry_events" in ro.engine.tables.bound
        assert ro.sql("SELECT count(*) FROM lakeml.model_aliases").item() == 1
        assert "lakeml.model_aliases" in ro.engine.table_names()


def test_extension_signatures_are_checked_once_per_file(file_lake, tmp_path, monkeypatch):
    """DuckDB checks each extension file's signature the first time; a connection that will be locked
    down later loads the same unchanged file without checking it again, and still refuses any LOAD."""
    import json

    import duckdb

    from lakeml.query import extensions

    monkeypatch.setenv("LAKEML_CACHE_DIR", str(tmp_path / "cache"))
    unsigned = "SELECT current_setting('allow_unsigned_extensions')"

    def allows_unsigned(**kw) -> bool:
        con = extensions.new_connection(httpfs=False, **kw)
        try:
            return con.execute(unsigned).fetchone()[0]
        finally:
            con.close()

    assert allows_unsigned(verified_cache=True) is False  # first time: DuckDB checks the signatures
    assert allows_unsigned(verified_cache=True) is True  # the same files: not again
    assert allows_unsigned() is False  # not opted in: always checked
    record = tmp_path / "cache" / extensions.VERIFIED
    stamps = json.loads(record.read_text())
    assert {Path(p).name for p in stamps} == {"avro.duckdb_extension", "iceberg.duckdb_extension"}
    record.write_text(json.dumps({p: [s[0] + 1, *s[1:]] for p, s in stamps.items()}))  # "changed" files
    assert allows_unsigned(verified_cache=True) is False
    # the lake's locked-down connections load nothing else, signed or not
    con = file_lake.duckdb()
    assert con.execute(unsigned).fetchone()[0] is True
    with pytest.raises(duckdb.Error, match="disabled"):
        con.execute(f"LOAD '{extensions.extension_path('httpfs')}'")
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET allow_unsigned_extensions = false")
