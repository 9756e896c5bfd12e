"""The remote client (``lakeml.connect("http://...")``) end to end against a real ``lakeml server``:
the Lake verbs, the fluent API, a server that is down when logging starts, and a client process that
dies with requests unsent (the next client of that server re-sends them, and nothing lands twice)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import polars as pl
import pytest

import lakeml
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError, StorageError
from lakeml.remote.lake import RemoteLake
from tests.servers import LakemlServer, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("remote")
    srv = LakemlServer(base / "wh", base_dir=base)
    yield srv
    srv.stop()


@pytest.fixture
def journal(tmp_path, monkeypatch):
    d = tmp_path / "journal"
    monkeypatch.setenv("LAKEML_REMOTE_JOURNAL", str(d))
    return d


@pytest.fixture
def remote(server, journal):
    lake = lakeml.connect(server.url)
    yield lake
    lake.close(timeout=30)


def iceberg_points(warehouse, run_id: str) -> list[tuple]:
    """(key, step, value) of a run, read with plain pyiceberg from the server's warehouse."""
    from pyiceberg.expressions import EqualTo

    lake = lakeml.connect(warehouse=str(warehouse))
    try:
        tbl = lake.store.table("metrics", refresh=True)
        rows = tbl.scan(row_filter=EqualTo("run_id", run_id)).to_arrow().to_pylist()
    finally:
        lake.close()
    return sorted((r["key"], r["step"], r["value"]) for r in rows)


def test_connect_dispatches_on_the_address(server, journal, monkeypatch):
    with lakeml.connect(server.url) as lake:
        assert isinstance(lake, RemoteLake) and lake.url == server.url
    monkeypatch.setenv("LAKEML_TRACKING_URI", server.url)
    monkeypatch.delenv("LAKEML_CATALOG", raising=False)
    with lakeml.connect() as lake:
        assert isinstance(lake, RemoteLake)
    with pytest.raises(InvalidInputError, match="http"):
        RemoteLake("ftp://x")


def test_lake_verbs_over_http(server, remote, tmp_path):
    exp = f"remote-{uuid.uuid4().hex[:6]}"
    run = remote.create_run(exp, run_name="r1", tags={"team": "a"})
    for i in range(500):
        remote.log_metric(run.run_id, "loss", 1 / (i + 1), step=i)
    remote.log_metrics(run.run_id, {"acc": 0.5, "f1": 0.25}, step=3)
    remote.log_params(run.run_id, {"lr": 0.1, "opt": "adam"})
    remote.set_tag(run.run_id, "gone", "x")
    remote.delete_tag(run.run_id, "gone")
    with pytest.raises(ConflictError, match="write-once"):
        remote.log_param(run.run_id, "lr", 0.2)
    remote.set_terminated(run.run_id)
    remote.flush()
    got = remote.get_run(run.run_id)
    assert got.status == lakeml.RunStatus.FINISHED and got.run_name == "r1"
    assert got.params == {"lr": "0.1", "opt": "adam"} and got.tags == {"team": "a"}
    assert got.metrics == {"loss": pytest.approx(1 / 500), "acc": 0.5, "f1": 0.25}
    df = remote.search_runs(exp, "metrics.acc > 0.4")
    assert isinstance(df, pl.DataFrame) and df["run_id"].to_list() == [run.run_id]
    hist = remote.get_metric_history(run.run_id, "loss")
    assert hist.height == 500 and hist["step"].to_list() == list(range(500))
    n = remote.sql("select count(*) as n from lakeml.metrics where run_id = $1", params=[run.run_id])["n"][0]
    assert n == 502
    assert [e.name for e in remote.list_experiments() if e.name == exp] == [exp]
    src = tmp_path / "notes.txt"
    src.write_text("hello")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x.txt").write_text("x")
    assert remote.log_artifact(run.run_id, src, "docs") == "docs/notes.txt"
    assert remote.log_artifacts(run.run_id, tmp_path / "d", "folder") == ["folder/sub/x.txt"]
    assert [a.path for a in remote.list_artifacts(run.run_id)] == ["docs", "folder"]
    out = remote.download_artifacts(run.run_id, "docs/notes.txt", tmp_path / "dl")
    assert open(out).read() == "hello"
    whole = remote.download_artifacts(run.run_id, "", tmp_path / "all")
    assert (tmp_path / "all" / "folder" / "sub" / "x.txt").read_text() == "x" and whole == str(tmp_path / "all")
    with pytest.raises(NotFoundError):
        remote.get_run(uuid.uuid4().hex)
    assert iceberg_points(server.warehouse, run.run_id)[:2] == [("acc", 3, 0.5), ("f1", 3, 0.25)]


def test_fluent_api_on_a_remote_lake(server, journal, monkeypatch):
    monkeypatch.setenv("LAKEML_TRACKING_URI", server.url)
    monkeypatch.delenv("LAKEML_CATALOG", raising=False)
    lake = lakeml.connect()
    try:
        with lakeml.start_run("fluent-remote", lake=lake) as run:
            lakeml.log_param("depth", 3)
            for step in range(10):
                lakeml.log_metric("loss", 1.0 / (step + 1), step=step)
            with lakeml.start_run(nested=True, lake=lake) as child:
                lakeml.log_metric("inner", 1.0)
        lake.flush()
        got = lake.get_run(run.id)
        assert got.status == lakeml.RunStatus.FINISHED and got.params == {"depth": "3"}
        assert lake.get_run(child.id).parent_run_id == run.id
        assert len(iceberg_points(server.warehouse, run.id)) == 10
    finally:
        lake.close()


CRASHING_CLIENT = textwrap.dedent("""
    import os, sys, time
    import lakeml
    lake = lakeml.connect(sys.argv[1])
    run = lake.create_run("crash", run_name="dies")
    for i in range(300):
        lake.log_metric(run.run_id, "m", float(i), step=i)
    lake.set_terminated(run.run_id)
    while list(lake._sender._queue) or lake._sender._taking:  # wait until journaled (not sent: no server)
        time.sleep(0.05)
    print(run.run_id, flush=True)
    os.kill(os.getpid(), 9)
""")


def test_server_down_at_start_and_a_crashed_client(tmp_path, journal):
    """No server yet: one client process logs a run and is killed with its requests unsent; this client
    logs a run too (it goes on; flush times out, the requests wait in the journal). Then the server comes
    up: this client's flush sends its own requests and the dead one's (adopted when it connected), and a
    later client has nothing left to send: every point is in Iceberg exactly once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LAKEML_REMOTE_JOURNAL": str(journal)}
    out = subprocess.run([sys.executable, "-c", CRASHING_CLIENT, url], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == -9, out.stderr
    dead_run = out.stdout.strip()
    lake = lakeml.connect(url)
    run = lake.create_run("offline", run_name="early")
    for i in range(200):
        lake.log_metric(run.run_id, "m", float(i), step=i)
    lake.log_param(run.run_id, "p", 1)
    lake.set_terminated(run.run_id)
    with pytest.raises(StorageError, match="not acknowledged"):
        lake.flush(timeout=0.5)
    # this client adopted the dead one's journal when it connected: one folder holds both runs' requests
    assert lake.pending > 0 and len({f.parent for f in journal.rglob("*.req")}) == 1
    srv = LakemlServer(tmp_path / "wh", base_dir=tmp_path, port=port)
    try:
        lake.flush(timeout=60)
        assert lake.pending == 0
        got = lake.get_run(run.run_id)
        assert got.status == lakeml.RunStatus.FINISHED and got.params == {"p": "1"}
        lake.close()
        third = lakeml.connect(url)  # nothing left to adopt: nothing sent twice
        assert third.get_run(dead_run).status == lakeml.RunStatus.FINISHED
        third.close()
        assert not list(journal.rglob("*.req"))
    finally:
        lake.close(timeout=1)
        srv.stop()
    assert iceberg_points(tmp_path / "wh", run.run_id) == [("m", i, float(i)) for i in range(200)]
    assert iceberg_points(tmp_path / "wh", dead_run) == [("m", i, float(i)) for i in range(300)]


def test_cli_read_commands_ask_the_server(server, remote):
    import json

    from typer.testing import CliRunner

    from lakeml.cli.main import app

    exp = f"cli-{uuid.uuid4().hex[:6]}"
    run = remote.create_run(exp, run_name="shown")
    remote.log_metric(run.run_id, "auc", 0.75)
    remote.log_param(run.run_id, "depth", 4)
    remote.flush()
    cli = CliRunner()

    def ok(*args):
        res = cli.invoke(app, [*args, "--server", server.url])
        assert res.exit_code == 0, res.output
        return res.output

    rows = json.loads(ok("runs", "list", "-e", exp, "-f", "metrics.auc > 0.5", "-o", "json"))
    assert [(r["run_name"], r["metrics"], r["params"]) for r in rows] == [("shown", {"auc": 0.75}, {"depth": "4"})]
    assert "metrics.auc" in ok("runs", "list", "-e", exp, "--order-by", "metrics.auc DESC")
    shown = json.loads(ok("runs", "show", run.run_id, "-o", "json"))
    assert shown["metric_points"] == {"auc": 1} and shown["params"] == {"depth": "4"}
    assert exp in [e["name"] for e in json.loads(ok("experiments", "list", "-o", "json"))]
    out = ok("sql", f"select run_id from lakeml.runs_latest where experiment_name = '{exp}'", "-f", "json")
    assert json.loads(out) == [{"run_id": run.run_id}]
    bad = cli.invoke(app, ["runs", "list", "-f", "metrics.auc <<< 1", "--server", server.url])
    assert bad.exit_code == 1 and "filter" in bad.output
