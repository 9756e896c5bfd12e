"""`lakeml bi export`: a DuckDB file that BI tools open (as Superset does) and that always shows current data."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from lakeml.query.engine import s3_secret_sql

# What Superset does with a "DuckDB" database: SQLAlchemy + duckdb-engine, in its own process.
SUPERSET_LIKE = textwrap.dedent("""
    import json, sys
    from sqlalchemy import create_engine, event, text
    spec = json.loads(sys.argv[1])
    engine = create_engine(spec["url"], connect_args=spec["connect_args"])
    if spec.get("init"):
        @event.listens_for(engine, "connect")
        def init(dbapi_con, record):
            dbapi_con.execute(spec["init"])
    with engine.connect() as c:
        out = {
            "runs": c.execute(text("SELECT count(*) FROM lakeml.runs_latest")).scalar(),
            "best": c.execute(text("SELECT run_name FROM lakeml.leaderboard WHERE metric = 'auc' "
                                   "ORDER BY rank_desc LIMIT 1")).scalar(),
            "points": c.execute(text("SELECT count(*) FROM lakeml.metrics")).scalar(),
            "schemas": sorted({r[0] for r in c.execute(text(
                "SELECT schema_name FROM duckdb_views() WHERE NOT internal"))}),
        }
    print(json.dumps(out))
""")


def _finished(lake, name, auc):
    r = lake.create_run("churn", run_name=name)
    lake.log_metric(r.run_id, "auc", auc)
    lake.set_terminated(r.run_id, wait=True)  # committed before the BI tool (another process) looks


def _open_like_superset(py, exp, lake, tmp_path) -> dict:
    spec = {"url": exp.sqlalchemy_url, "connect_args": exp.connect_args}
    if exp.needs_s3_secret:
        spec["init"] = s3_secret_sql(lake.config.s3_options())
    env = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}  # nothing cached in a real home
    done = subprocess.run([py, "-c", SUPERSET_LIKE, json.dumps(spec)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bi_file_always_sees_current_data(lake, tmp_path, py):
    _finished(lake, "first", 0.6)
    exp = lake.bi_export(tmp_path / "bi" / "lake.duckdb", extension_directory=str(tmp_path / "duckdb-ext"))
    assert (tmp_path / "bi" / "lake.duckdb").is_file()
    assert "lakeml.leaderboard" in exp.views and "lakeml.runs" in exp.views
    assert exp.needs_s3_secret == (lake.kind == "s3")

    seen = _open_like_superset(py, exp, lake, tmp_path)
    assert seen["runs"] == 1 and seen["best"] == "first" and seen["points"] == 1
    assert seen["schemas"] == ["lakeml"]

    # new data logged through lakeml after the export: the same file shows it, no re-export
    _finished(lake, "second", 0.9)
    seen = _open_like_superset(py, exp, lake, tmp_path)
    assert seen["runs"] == 2 and seen["best"] == "second" and seen["points"] == 2


def test_bi_export_cli(tmp_path, py, monkeypatch):
    wh = tmp_path / "wh"
    env = {"LAKEML_WAREHOUSE": str(wh), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    path = tmp_path / "lake.duckdb"
    done = subprocess.run([py, "-m", "lakeml", "bi", "export", str(path), "--extension-dir", str(tmp_path / "ext")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "unsafe_enable_version_guessing" in done.stdout and "duckdb:///" in done.stdout
    assert path.is_file() and list((tmp_path / "ext").rglob("iceberg.duckdb_extension"))


def test_bi_export_refuses_a_non_duckdb_path(file_lake, tmp_path):
    from lakeml.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=".duckdb"):
        file_lake.bi_export(tmp_path / "lake.csv", extension_directory=str(tmp_path / "ext"))
