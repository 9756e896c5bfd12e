"""The real CLI, in-process (typer's CliRunner) and as the installed ``lakeml`` program.

A small lake is logged through the library first; every tracking command then reads it in
text and JSON. Errors must be one line, exit code 1, no traceback. The S3 tests configure
the lake the way MinIO users do: ``LAKEML_CATALOG`` plus ``PYICEBERG_CATALOG__<NAME>__...``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app

LAKEML_BIN = Path(sys.executable).parent / "lakeml"


def invoke(args: list[str], env: dict[str, str] | None = None):
    """Run the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert "Traceback" not in result.output
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    for n in needles:
        assert n in err, err


def log_sample_runs(lake) -> dict[str, str]:
    """Three runs in two experiments: two finished with metric histories, one failed."""
    ids = {}
    for lr, depth in ((0.1, 3), (0.3, 6)):
        run = lake.create_run("churn", run_name=f"xgb-lr{lr}", tags={"team": "growth"})
        lake.log_params(run.run_id, {"lr": lr, "max_depth": depth})
        for step in range(5):
            lake.log_metric(run.run_id, "loss", 1.0 / (step + 1) + lr, step=step)
        lake.log_metric(run.run_id, "auc", 0.8 + lr / 2)
        lake.set_terminated(run.run_id, "FINISHED")
        ids[f"lr{lr}"] = run.run_id
    failed = lake.create_run("fraud", run_name="broken")
    lake.set_terminated(failed.run_id, "FAILED", error="ValueError: bad input")
    ids["failed"] = failed.run_id
    return ids


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A file warehouse with sample runs and an artifact; yields (env, run ids)."""
    tmp = tmp_path_factory.mktemp("cli")
    wh = tmp / "wh"
    with lakeml.connect(warehouse=wh, commit_interval=0.2) as lake:
        ids = log_sample_runs(lake)
        art = tmp / "model.txt"
        art.write_text("weights")
        lake.log_artifact(ids["lr0.3"], art, "model")
        (tmp / "train.csv").write_text("x,y\n1,2\n")
        lake.log_input(ids["lr0.3"], path=tmp / "train.csv")
    env = {"LAKEML_WAREHOUSE": str(wh), "LAKEML_CATALOG": ""}
    return env, ids


def test_help_lists_every_tracking_command():
    out = invoke(["--help"]).stdout
    for cmd in ("init", "experiments", "runs", "doctor", "demo"):
        assert cmd in out
    runs_help = invoke(["runs", "--help"]).stdout
    assert "list" in runs_help and "show" in runs_help


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_init_creates_the_tables_and_is_idempotent(tmp_path, fmt):
    env = {"LAKEML_WAREHOUSE": str(tmp_path / "wh"), "LAKEML_CATALOG": ""}
    for _ in range(2):
        r = invoke(["init", "-o", fmt], env=env)
        assert r.exit_code == 0, r.output
    if fmt == "json":
        doc = json.loads(r.stdout)
        assert {"lakeml.runs", "lakeml.metrics", "lakeml.params", "lakeml.inputs"} <= set(doc["tables"])
        assert doc["artifact_root"].startswith("file://")
    else:
        assert "lakeml.metrics" in r.stdout and "artifacts go to file://" in r.stdout
    from pyiceberg.catalog.sql import SqlCatalog

    cat = SqlCatalog("lakeml", uri=f"sqlite:///{tmp_path / 'wh' / 'catalog.db'}")
    assert ("lakeml", "runs") in cat.list_tables("lakeml")


def test_experiments_list(sample):
    env, _ = sample
    text = invoke(["experiments", "list"], env=env)
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["experiment_id", "name", "runs"]
    assert any(" churn " in f" {ln} " for ln in lines) and any("fraud" in ln for ln in lines)
    rows = json.loads(invoke(["experiments", "list", "-o", "json"], env=env).stdout)
    assert {r["name"]: r["runs"] for r in rows} == {"churn": 2, "fraud": 1}
    assert all(r["artifact_location"].startswith("file://") for r in rows)


def test_runs_list_text(sample):
    env, ids = sample
    r = invoke(["runs", "list"], env=env)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].split() == ["run_id", "experiment", "run_name", "status", "start_time",
                                                "duration"]
    for rid in ids.values():
        assert rid in r.stdout
    assert "FAILED" in r.stdout and "FINISHED" in r.stdout


def test_runs_list_json_nests_params_metrics_tags(sample):
    env, ids = sample
    rows = json.loads(invoke(["runs", "list", "-o", "json"], env=env).stdout)
    by_id = {r["run_id"]: r for r in rows}
    assert set(by_id) == set(ids.values())
    r = by_id[ids["lr0.3"]]
    assert r["params"] == {"lr": "0.3", "max_depth": "6"}
    assert r["metrics"] == {"auc": pytest.approx(0.95), "loss": pytest.approx(0.2 + 0.3)}
    assert r["tags"] == {"team": "growth"}
    assert r["status"] == "FINISHED" and r["experiment_name"] == "churn"
    assert by_id[ids["failed"]]["params"] == {}


def test_runs_list_filter_order_limit_experiment(sample):
    env, ids = sample
    args = ["runs", "list", "-e", "churn", "--filter", "params.lr = '0.1' OR metrics.auc > 0"]
    assert_one_line_error(invoke(args, env=env), "InvalidInputError", "AND")

    rows = json.loads(invoke(["runs", "list", "-e", "churn", "--order-by", "metrics.auc DESC", "-o", "json"],
                             env=env).stdout)
    assert [r["run_id"] for r in rows] == [ids["lr0.3"], ids["lr0.1"]]
    rows = json.loads(invoke(["runs", "list", "--order-by", "metrics.auc ASC", "-n", "1", "-o", "json"],
                             env=env).stdout)
    assert [r["run_id"] for r in rows] == [ids["lr0.1"]]
    rows = json.loads(invoke(["runs", "list", "-f", "metrics.auc > 0.9 AND params.max_depth = '6'", "-o", "json"],
                             env=env).stdout)
    assert [r["run_id"] for r in rows] == [ids["lr0.3"]]
    rows = json.loads(invoke(["runs", "list", "-e", "fraud", "-o", "json"], env=env).stdout)
    assert [r["run_id"] for r in rows] == [ids["failed"]]
    # The text table shows the columns that the filter and the order name, plus -C columns.
    text = invoke(["runs", "list", "-e", "churn", "-f", "metrics.auc > 0", "--order-by", "params.lr",
                   "-C", "tags.team"], env=env).stdout
    header = text.splitlines()[0].split()
    assert header[-3:] == ["tags.team", "metrics.auc", "params.lr"]
    assert "growth" in text and "0.95" in text


def test_runs_list_empty(tmp_path):
    env = {"LAKEML_WAREHOUSE": str(tmp_path / "wh"), "LAKEML_CATALOG": ""}
    assert invoke(["runs", "list"], env=env).stdout.strip() == "(none)"
    assert json.loads(invoke(["runs", "list", "-o", "json"], env=env).stdout) == []


def test_runs_show_text(sample):
    env, ids = sample
    r = invoke(["runs", "show", ids["lr0.3"]], env=env)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.startswith(f"run {ids['lr0.3']}")
    for section in ("params", "metrics (latest value, points logged)", "tags", "inputs", "artifacts"):
        assert f"\n{section}\n" in out
    assert "max_depth  6" in out
    assert "(5 points)" in out  # the loss history
    assert "model/model.txt" in out and "7 bytes" in out
    assert "train.csv" in out and "sha256:" in out


def test_runs_show_json(sample):
    env, ids = sample
    doc = json.loads(invoke(["runs", "show", ids["lr0.3"], "-o", "json"], env=env).stdout)
    assert doc["run_id"] == ids["lr0.3"] and doc["status"] == "FINISHED"
    assert doc["params"] == {"lr": "0.3", "max_depth": "6"}
    assert doc["metric_points"] == {"loss": 5, "auc": 1}
    assert [a["path"] for a in doc["artifacts"]] == ["model/model.txt"]
    assert doc["inputs"][0]["kind"] == "file" and doc["inputs"][0]["digest"].startswith("sha256:")
    failed = json.loads(invoke(["runs", "show", ids["failed"], "-o", "json"], env=env).stdout)
    assert failed["status"] == "FAILED" and failed["error"] == "ValueError: bad input"


def test_runs_show_unknown_run_is_one_line(sample):
    env, _ = sample
    missing = "0123456789abcdef0123456789abcdef"
    assert_one_line_error(invoke(["runs", "show", missing], env=env), "NotFoundError", missing, "lakeml runs list")
    assert_one_line_error(invoke(["runs", "show", "nope", "-o", "json"], env=env), "InvalidInputError", "'nope'")


def test_unknown_catalog_is_one_line(tmp_path):
    env = {"LAKEML_CATALOG": "nowhere", "PYICEBERG_HOME": str(tmp_path)}
    assert_one_line_error(invoke(["runs", "list"], env=env), "ConfigError", "'nowhere'",
                          "PYICEBERG_CATALOG__NOWHERE__URI")


def test_warehouse_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    assert_one_line_error(invoke(["experiments", "list", "--warehouse", str(f)]), str(f))


def test_installed_program_runs_and_fails_cleanly(sample):
    """The console script of the venv, as users run it: JSON out, and an error without a traceback."""
    env, ids = sample
    full = {**os.environ, **env}
    ok = subprocess.run([str(LAKEML_BIN), "runs", "list", "-o", "json"], env=full, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert {r["run_id"] for r in json.loads(ok.stdout)} == set(ids.values())
    bad = subprocess.run([str(LAKEML_BIN), "runs", "show", "f" * 32], env=full, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr + bad.stdout
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "NotFoundError" in bad.stderr
    mod = subprocess.run([sys.executable, "-m", "lakeml", "experiments", "list", "-o", "json"], env=full,
                         capture_output=True, text=True, timeout=120)
    assert mod.returncode == 0 and {r["name"] for r in json.loads(mod.stdout)} == {"churn", "fraud"}


# -- doctor -------------------------------------------------------------------------------------

def _checks(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_doctor_healthy_file_warehouse(tmp_path):
    env = {"LAKEML_WAREHOUSE": str(tmp_path / "wh"), "LAKEML_CATALOG": ""}
    r = invoke(["doctor"], env=env)
    assert r.exit_code == 0, r.output
    assert "FAIL" not in r.stdout and "all checks passed" in r.stdout
    assert f"sqlite:///{tmp_path / 'wh' / 'catalog.db'}" in r.stdout
    j = invoke(["doctor", "-o", "json"], env=env)
    assert j.exit_code == 0
    doc = json.loads(j.stdout)
    assert doc["ok"] is True and doc["config"]["embedded"] == "true"
    checks = _checks(j)
    assert set(checks) == {"configuration", "catalog", "storage", "tables", "artifact root", "duckdb", "sql read",
                           "commit retries"}
    assert checks["commit retries"]["detail"] == "no commit retried in this process"
    assert not checks["artifact root"]["warn"]
    assert "created" not in checks["tables"]["detail"]  # the first doctor run created them
    assert "httpfs" in checks["duckdb"]["detail"]
    # The probe object is gone again.
    assert not list((tmp_path / "wh").rglob(".lakeml-doctor-*"))


def s3_env(server, bucket: str, tmp_path: Path, name: str = "minio") -> dict[str, str]:
    """How a MinIO user configures lakeml: a named pyiceberg catalog in environment variables."""
    p = f"PYICEBERG_CATALOG__{name.upper()}__"
    env = {"LAKEML_CATALOG": name, "LAKEML_WAREHOUSE": "", "PYICEBERG_HOME": str(tmp_path),
           f"{p}TYPE": "sql", f"{p}URI": f"sqlite:///{tmp_path / 'catalog.db'}",
           f"{p}WAREHOUSE": f"s3://{bucket}/wh"}
    for key, value in server.props(bucket, "wh").items():
        if key.startswith("s3."):
            env[p + key.upper().replace(".", "__").replace("-", "_")] = str(value)
    return env


@pytest.mark.s3
def test_doctor_healthy_s3_lake(s3_bucket, tmp_path, monkeypatch):
    server, bucket = s3_bucket
    env = s3_env(server, bucket, tmp_path)
    r = invoke(["doctor"], env=env)
    assert r.exit_code == 0, r.output
    assert "FAIL" not in r.stdout
    assert f"s3://{bucket}/wh/lakeml-artifacts" in r.stdout
    (secret_line,) = [ln for ln in r.stdout.splitlines() if "s3.secret-access-key" in ln]
    assert secret_line.split() == ["s3.secret-access-key", "****"]
    checks = _checks(invoke(["doctor", "-o", "json"], env=env))
    assert all(c["ok"] for c in checks.values()), checks


@pytest.mark.s3
def test_doctor_missing_bucket_fails(moto_server, tmp_path):
    env = s3_env(moto_server, "no-such-bucket", tmp_path)
    r = invoke(["doctor", "-o", "json"], env=env)
    assert r.exit_code == 1
    checks = _checks(r)
    assert checks["catalog"]["ok"]
    assert not checks["storage"]["ok"] and "no-such-bucket" in checks["storage"]["detail"]
    assert not checks["tables"]["ok"] and "skipped" in checks["tables"]["detail"]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_doctor_dead_s3_endpoint_fails_clearly(tmp_path):
    port = _dead_port()
    p = "PYICEBERG_CATALOG__DEAD__"
    env = {"LAKEML_CATALOG": "dead", "LAKEML_WAREHOUSE": "", "PYICEBERG_HOME": str(tmp_path),
           f"{p}TYPE": "sql", f"{p}URI": f"sqlite:///{tmp_path / 'catalog.db'}", f"{p}WAREHOUSE": "s3://lake/wh",
           f"{p}S3__ENDPOINT": f"http://127.0.0.1:{port}", f"{p}S3__ACCESS_KEY_ID": "key",
           f"{p}S3__SECRET_ACCESS_KEY": "secret", f"{p}S3__REGION": "us-east-1"}
    r = invoke(["doctor", "--timeout", "2"], env=env)
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    lines = {ln.split()[1]: ln for ln in r.stdout.splitlines() if ln.strip().startswith(("OK", "FAIL"))}
    assert lines["catalog"].strip().startswith("OK")
    storage = lines["storage"]
    assert storage.strip().startswith("FAIL")
    assert f"127.0.0.1:{port}" in storage and "s3.endpoint" in storage
    assert lines["tables"].strip().startswith("FAIL") and "skipped" in lines["tables"]
    assert "check(s) failed: storage, tables, artifact root, sql read" in r.stdout


# -- S3 through environment variables -----------------------------------------------------------

@pytest.mark.s3
def test_runs_list_on_s3_configured_by_env(s3_bucket, tmp_path, monkeypatch):
    server, bucket = s3_bucket
    env = s3_env(server, bucket, tmp_path, name="lakes3")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with lakeml.connect(commit_interval=0.2) as lake:  # resolved from the environment alone
        assert lake.config.catalog_name == "lakes3"
        assert lake.config.artifact_root == f"s3://{bucket}/wh/lakeml-artifacts"
        ids = log_sample_runs(lake)
    text = invoke(["runs", "list", "-e", "churn", "--order-by", "metrics.auc DESC"])
    assert text.exit_code == 0, text.output
    assert ids["lr0.3"] in text.stdout and ids["failed"] not in text.stdout
    rows = json.loads(invoke(["runs", "list", "-o", "json"]).stdout)
    assert {r["run_id"] for r in rows} == set(ids.values())
    show = json.loads(invoke(["runs", "show", ids["lr0.1"], "-o", "json"]).stdout)
    assert show["artifact_uri"].startswith(f"s3://{bucket}/wh/lakeml-artifacts/")
    assert show["params"]["lr"] == "0.1"


# -- misuse: one line, exit 1 (never a usage box with exit 2) ------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["runs", "list", "-n", "0"], "--limit"),
    (["runs", "list", "--limit", "-3"], "--limit"),
    (["sql", "SELECT 1", "--format", "parquet"], "--out"),
    (["sql", "SELECT 1", "--max-rows", "0"], "--max-rows"),
    (["sql", "SELECT 1", "--max-rows", "-5"], "--max-rows"),
    (["doctor", "--timeout", "abc"], "--timeout"),
    (["doctor", "--timeout", "0"], "--timeout"),
    (["models", "events", "-n", "-1"], "--limit"),
    (["models", "events", "-n", "0"], "--limit"),
    (["runs", "list", "--output", "yaml"], "--output"),
    (["runs", "show"], "run_id"),
    (["runs", "lst"], "lst"),
])
def test_misuse_is_one_line_and_exit_1(sample, args, needle):
    env, _ = sample
    r = invoke(args, env=env)
    assert_one_line_error(r, needle, "--help")
    assert "Usage:" not in r.output and r.stdout == ""


def test_installed_program_misuse_is_one_line(sample):
    env, _ = sample
    r = subprocess.run([str(LAKEML_BIN), "runs", "list", "-n", "0"], env={**os.environ, **env},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith("error: ")


def test_bare_group_still_shows_its_help(sample):
    r = invoke(["models"], env=sample[0])
    assert "Usage:" in r.output and "register" in r.output


# -- hostile values: control characters and bidi overrides are escaped ----------------------------

ESC_TITLE = "\x1b]0;pwned\x07"  # sets the terminal title, then BEL
CLEAR = "\x1b[2J"
BIDI = "report\u202eexe.txt"  # shows as 'reporttxt.exe'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    wh = tmp_path_factory.mktemp("hostile") / "wh"
    with lakeml.connect(warehouse=wh, commit_interval=0.2) as lake:
        run = lake.create_run("evil", run_name="r1", tags={"note": BIDI})
        lake.log_params(run.run_id, {"cmd": ESC_TITLE, "clear": CLEAR + "x\r\n\x9b31m"})
        lake.log_metric(run.run_id, "auc", 0.5)
        lake.set_terminated(run.run_id, "FAILED", error=f"boom {CLEAR}")
        lake.flush()
    return {"LAKEML_WAREHOUSE": str(wh), "LAKEML_CATALOG": ""}, run.run_id


def _no_raw_controls(text: str) -> None:
    raw = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0
           or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]
    assert raw == [], raw


def test_values_are_escaped_in_every_text_output(hostile):
    env, run_id = hostile
    outputs = [
        invoke(["runs", "show", run_id], env=env),
        invoke(["runs", "list", "-e", "evil", "-C", "params.cmd", "-C", "params.clear", "-C", "tags.note"],
               env=env),
        invoke(["sql", "SELECT key, value FROM lakeml.params UNION ALL SELECT key, value FROM lakeml.tags"],
               env=env),
        invoke(["sql", "SELECT value AS \"col\x1b[1m\" FROM lakeml.tags"], env=env),
    ]
    for r in outputs:
        assert r.exit_code == 0, r.output
        _no_raw_controls(r.output)
    show = outputs[0].stdout
    assert "\\x1b]0;pwned\\x07" in show and "report\\u202eexe.txt" in show and "\\x1b[2Jx\\x0d\\x0a\\x9b31m" in show
    assert "\\x1b]0;pwned\\x07" in outputs[1].stdout and "report\\u202eexe.txt" in outputs[2].stdout
    assert "col\\x1b[1m" in outputs[3].stdout


def test_json_output_keeps_the_exact_values(hostile):
    env, run_id = hostile
    r = invoke(["runs", "show", run_id, "-o", "json"], env=env)
    _no_raw_controls(r.stdout)  # JSON escapes them itself
    doc = json.loads(r.stdout)
    assert doc["params"]["cmd"] == ESC_TITLE and doc["tags"]["note"] == BIDI


def test_errors_are_escaped(hostile):
    env, _ = hostile
    r = invoke(["runs", "show", CLEAR + "abc"], env=env)
    assert_one_line_error(r, "\\x1b[2J")
    _no_raw_controls(r.stderr)
    r = invoke(["runs", "list", "-f", f"params.cmd = '{ESC_TITLE}' AND"], env=env)
    assert r.exit_code == 1
    _no_raw_controls(r.stderr)


# -- a cold read-only command does not load the write stack ----------------------------------------

_PROBE = """
import atexit, json, sys
from lakeml.cli.main import app
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
app()
"""


@pytest.mark.parametrize("args", [["runs", "list", "-e", "churn"], ["runs", "show", "{run}"], ["experiments", "list"],
                                  ["sql", "SELECT count(*) FROM lakeml.leaderboard"]])
def test_read_only_commands_skip_pyiceberg_catalog_and_sqlalchemy(sample, args):
    """The embedded catalog's locations are read with stdlib sqlite3 and the views bound on demand."""
    env, ids = sample
    args = [a.format(run=ids["lr0.3"]) for a in args]
    r = subprocess.run([sys.executable, "-c", _PROBE, *args], env={**os.environ, **env}, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    modules = set(json.loads(r.stderr.strip().splitlines()[-1]))
    assert "duckdb" in modules  # it did read
    assert not {"pyiceberg.catalog.sql", "sqlalchemy", "pyiceberg.table"} & modules




@pytest.mark.parametrize("args", [["experiments", "list"], ["runs", "list", "-e", "churn"],
                                  ["runs", "list", "-f", "metrics.auc > 0", "--order-by", "params.lr", "-o", "json"]])
def test_list_commands_skip_polars_and_pyarrow(sample, args):
    """Rows come from DuckDB as Python tuples, and a reader starts no committer (it imports pyarrow)."""
    env, _ = sample
    r = subprocess.run([sys.executable, "-c", _PROBE, *args], env={**os.environ, **env},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "churn" in r.stdout
    modules = set(json.loads(r.stderr.strip().splitlines()[-1]))
    assert "duckdb" in modules  # it did read
    assert not {"polars", "pyarrow"} & modules


def test_a_reader_starts_no_committer_thread_until_it_writes(sample, monkeypatch, tmp_path):
    """The row buffers (and the committer's thread) come with the first write, not with connect()."""
    import threading

    from lakeml.cli.common import open_lake

    env, _ = sample
    for k, val in env.items():
        monkeypatch.setenv(k, val)

    def committers() -> int:
        return sum(t.name == "lakeml-committer" and t.is_alive() for t in threading.enumerate())

    before = committers()
    with open_lake(None, None, read_only=True) as lake:
        assert {e.name for e in lake.list_experiments()} == {"churn", "fraud"}
        assert lake.get_run(lake.search_runs("churn")["run_id"][0]).experiment_name == "churn"
        assert committers() == before
    with open_lake(None, str(tmp_path / "wh")) as lake:  # a lake of its own: the sample stays as it is
        lake.init()
        assert committers() == before
        run = lake.create_run("threads-probe")
        assert committers() == before + 1
        lake.set_terminated(run.run_id)
