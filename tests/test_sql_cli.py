"""`lakeml sql` in every output format, with time travel and its one-line errors."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "wh"
    with lakeml.connect(warehouse=path) as lake:
        r = lake.create_run("churn", run_name="a")
        lake.log_params(r.run_id, {"max_depth": 4})
        lake.log_metric(r.run_id, "auc", 0.8)
        lake.set_terminated(r.run_id, wait=True)  # returns once committed
        # the moment: run a's last commit, read from the snapshots (times are in ms)
        cat = lake.store.catalog
        ms = max(s.timestamp_ms for t in map(cat.load_table, cat.list_tables("lakeml")) for s in t.snapshots())
        moment = datetime.fromtimestamp(ms // 1000, timezone.utc) + timedelta(milliseconds=ms % 1000)
        while time.time_ns() // 1_000_000 <= ms:  # so that run b's snapshots are stamped later
            time.sleep(0.0005)
        r = lake.create_run("churn", run_name="b")
        lake.log_metric(r.run_id, "auc", 0.9)
        lake.set_terminated(r.run_id)
    return path, moment


def run(wh, *args):
    return CliRunner().invoke(app, ["sql", *args, "--warehouse", str(wh[0])], catch_exceptions=False)


BOARD = "SELECT run_name, value FROM lakeml.leaderboard WHERE experiment = 'churn' ORDER BY rank_desc LIMIT 10"


def test_table(wh):
    res = run(wh, BOARD)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["run_name", "value"] and lines[2].split() == ["b", "0.9"]
    assert lines[-1] == "(2 rows)"


def test_empty_result_in_every_format(wh):
    empty = "SELECT run_name, value FROM lakeml.leaderboard WHERE experiment = 'nobody'"
    res = run(wh, empty)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].split() == ["run_name", "value"] and "(0 rows)" in res.stdout
    assert run(wh, empty, "-f", "csv").stdout.splitlines() == ["run_name,value"]
    assert json.loads(run(wh, empty, "-f", "json").stdout) == []


def test_csv_json_parquet(wh, tmp_path):
    res = run(wh, BOARD, "--format", "csv")
    assert res.stdout.splitlines() == ["run_name,value", "b,0.9", "a,0.8"]
    res = run(wh, "SELECT run_name, params FROM lakeml.run_summary ORDER BY run_name", "-f", "json")
    assert json.loads(res.stdout) == [{"run_name": "a", "params": {"max_depth": "4"}}, {"run_name": "b", "params": {}}]
    out = tmp_path / "board.parquet"
    res = run(wh, BOARD, "-f", "parquet", "--out", str(out))
    assert res.exit_code == 0 and pl.read_parquet(out)["run_name"].to_list() == ["b", "a"]
    res = run(wh, BOARD, "-f", "csv", "--out", str(tmp_path / "b.csv"))
    assert (tmp_path / "b.csv").read_text().startswith("run_name,value")


def test_as_of(wh):
    res = run(wh, BOARD, "--as-of", wh[1].isoformat(), "-f", "csv")
    assert res.stdout.splitlines() == ["run_name,value", "a,0.8"]


def test_errors_are_one_line(wh, tmp_path):
    for query, needle in [("COPY (SELECT 1) TO '/tmp/lakeml-cli-x.csv'", "ReadOnlyError"),
                          ("SELECT * FROM lakeml.nope", "unknown table"),
                          ("SELEC 1", "syntax error")]:
        res = run(wh, query)
        assert res.exit_code == 1 and res.stderr.startswith("error: ") and needle in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    res = run(wh, BOARD, "-f", "parquet")
    assert res.exit_code != 0 and "--out" in res.output


def test_read_write_flag(wh, tmp_path):
    out = tmp_path / "x.csv"
    res = run(wh, f"COPY (SELECT 42 AS v) TO '{out}'", "--read-write")
    assert res.exit_code == 0, res.output
    assert out.read_text().splitlines() == ["v", "42"]
