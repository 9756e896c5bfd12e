"""Sweeps never wait for storage: run ends hand their rows to the spool, the committer merges a tick's runs
into one commit per table, a SIGKILL right after a run ended loses nothing, and one bad row never costs
the rest of its batch."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import lakeml
from lakeml.storage.committer import BATCH_IDS, Batch, encode_ids, ids_contain
from lakeml.storage.spool import _HEAD, Spool, claim_dead_owners, create_owner, list_segments, spool_root
from tests.workers.lakes import lake_spec, plain_catalog

ROOT = Path(__file__).resolve().parent.parent
SURROGATE = b"data-\xff.csv".decode("utf-8", "surrogateescape")


@pytest.fixture
def still_lake(tmp_path):
    """A lake whose committer and spooler never tick by themselves: only explicit calls move rows."""
    lake = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=3600, commit_deadline=30,
                          **{"lakeml.spool-interval-ms": "3600000", "lakeml.maintenance.auto": "false"})
    yield lake
    lake.close()


def _snapshots(lake, table: str) -> list:
    return plain_catalog(lake_spec(lake)).load_table(f"{lake.config.namespace}.{table}").metadata.snapshots


def test_a_handoff_is_one_spool_write_for_every_table(still_lake):
    lake = still_lake
    spool = lake.committer.spool
    run = lake.create_run("handoff")
    lake.log_params(run.run_id, {"lr": "0.1", "depth": "6"})
    lake.set_tag(run.run_id, "team", "a")
    for i in range(50):
        lake.log_metric(run.run_id, "loss", 1.0 / (i + 1), step=i)
    writes = spool.writes
    handed = lake.committer.handoff()
    assert handed >= 54  # experiment, run event, 2 params, 1 tag, 50 points
    assert spool.writes == writes + 1  # one write (one fsync) holds the batches of all five tables
    segs = spool.segments()
    assert {s.table for s in segs} >= {"experiments", "runs", "params", "tags", "metrics"}
    assert len({s.path for s in segs}) == 1 and sum(s.num_rows for s in segs) == handed
    assert sorted(segs[0].read().column_names) == sorted(lake.store.contracts[segs[0].table].column_names)
    lake.flush()
    assert spool.segments() == [] and not list(spool.dir.glob("*.lkspool"))  # committed: the log is gone


def test_many_runs_ended_in_one_tick_cost_one_commit_per_table(still_lake):
    runs = 200
    lake = still_lake
    if True:
        lake.init()
        before = {t: len(_snapshots(lake, t)) for t in ("runs", "params", "metrics", "tags")}
        ids = []
        for r in range(runs):
            run = lake.create_run("sweep", run_name=f"r{r}")
            lake.log_params(run.run_id, {f"p{i}": str(r * i) for i in range(20)})
            lake.set_tags(run.run_id, {f"t{i}": "x" for i in range(5)})
            for s in range(10):
                lake.log_metrics(run.run_id, {f"m{k}": s * 0.1 + k for k in range(10)}, step=s)
            lake.set_terminated(run.run_id)  # a handoff: no commit waited for
            ids.append(run.run_id)
        lake.flush()
        for table, n in before.items():
            added = len(_snapshots(lake, table)) - n
            # the first handoff finds the committer idle and wakes it; every later run of the sweep ends
            # within the (one hour) tick, so the flush merges all of them into a single commit
            assert 1 <= added <= 2, (table, added)
        last = _snapshots(lake, "metrics")[-1].summary.additional_properties
        assert len(last[BATCH_IDS].split(",")) == 1  # 199+ batches, one id range in the summary
        df = lake.search_runs("sweep", max_results=runs + 1)
        assert df.height == runs and set(df["status"].to_list()) == {"FINISHED"}
        assert lake.engine.arrow("SELECT count(*) AS n FROM lakeml.metrics", tables=["metrics"]).to_pylist()[0]["n"] \
            == runs * 100


CHILD = r"""
import json, sys
import lakeml
from tests.workers.lakes import open_spec

lake = open_spec(json.loads(sys.argv[1]), commit_interval=3600, **{"lakeml.spool-interval-ms": "3600000"})
lakeml.set_lake(lake)
for r in range(3):
    with lakeml.start_run(experiment="killed-sweep", run_name=f"r{r}") as run:
        lakeml.log_params({"lr": str(r), "name": "x" * r})
        for s in range(100):
            lakeml.log_metrics({"loss": 1.0 / (s + 1), "acc": s / 100}, step=s)
    print("ended", run.info.run_id if hasattr(run, "info") else run.run_id, flush=True)
print("pending", lake.committer.pending_rows(), flush=True)
sys.stdin.readline()  # SIGKILLed here: nothing was committed, everything is in the spool
"""


def test_sigkill_right_after_end_run_loses_nothing(file_lake, tmp_path, py):
    lake = file_lake
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([py, str(script), json.dumps(lake_spec(lake))], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "LAKEML_SYNC_END": "0"})
    ended, pending = [], 0
    try:
        for line in child.stdout:
            word, value = line.split()
            if word == "ended":
                ended.append(value)
            elif word == "pending":
                pending = int(value)
                break
        else:
            raise AssertionError(child.stderr.read()[-3000:])
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        for f in (child.stdin, child.stdout, child.stderr):
            f.close()
    assert len(ended) == 3 and pending > 0  # the runs ended without waiting for a commit
    report = lake.recover()
    assert report.runs_killed == []  # every run had ended: its FINISHED event came back from the spool
    assert report.rows == pending
    for run_id in ended:
        run = lake.get_run(run_id)
        assert run.status.value == "FINISHED" and run.params["lr"] in {"0", "1", "2"}
        assert lake.get_metric_history(run_id, "loss").height == 100
        assert lake.get_metric_history(run_id, "acc").height == 100


def test_a_bad_row_is_quarantined_and_the_rest_of_the_batch_committed(still_lake, caplog):
    lake = still_lake
    good = lake.create_run("quarantine")
    other = lake.create_run("quarantine")
    lake.log_params(good.run_id, {"a": "1", "b": "2"})
    lake.log_params(other.run_id, {"c": "3"})
    # a row that slipped past validation (the call checks it now): a string Arrow cannot encode
    contract = lake.store.contracts["params"]
    proto = next(r for r in lake.committer.buffer("params").rows)
    row = dict(zip(contract.column_names, proto))
    row.update(key="file", value=SURROGATE)
    lake.committer.buffer("params").add(tuple(row[c] for c in contract.column_names))
    with caplog.at_level(logging.ERROR, logger="lakeml.committer"):
        lake.flush()
    assert lake.get_run(good.run_id).params == {"a": "1", "b": "2"}
    assert lake.get_run(other.run_id).params == {"c": "3"}
    assert lake.committer.stats.quarantined == 1 and lake.committer.pending_rows() == 0
    assert any("set aside" in r.getMessage() and "params" in r.getMessage() for r in caplog.records)
    kept = lake.committer.spool.quarantine_dir / "params.jsonl"
    entries = [json.loads(line) for line in kept.read_text().splitlines()]
    assert len(entries) == 1 and entries[0]["row"][contract.column_names.index("value")] == SURROGATE
    assert "UnicodeEncodeError" in entries[0]["error"] and entries[0]["table"] == "params"
    assert lake.committer.spool.segments() == []  # the batch is done: nothing waits in the spool


def test_sync_without_a_spool_raises_and_keeps_the_rows(tmp_path):
    lake = lakeml.connect(warehouse=tmp_path / "wh", **{"lakeml.spool-dir": "off"})
    try:
        run = lake.create_run("x")
        lake.log_metric(run.run_id, "m", 1.0)
        with pytest.raises(lakeml.errors.StorageError, match="switched off"):
            lake.committer.sync()
        assert lake.committer.handoff() == 0  # a handoff only queues: nothing left in the buffers
        assert lake.committer.pending_rows() == 3
        lake.flush()
        assert lake.get_run(run.run_id).metrics == {"m": 1.0}
    finally:
        lake.close()


def test_a_spool_of_an_older_version_is_recovered(file_lake):
    """One ``.arrow`` file per batch, as lakeml wrote them before the log format."""
    lake = file_lake
    root = spool_root(lake.config)
    owner, fd = create_owner(root)
    os.close(fd)  # nobody holds its lock now: a dead owner
    run = lake.create_run("old-spool")
    lake.flush()
    contract = lake.store.contracts["metrics"]
    from lakeml.storage.committer import rows_to_arrow

    data = rows_to_arrow(contract, [(run.run_id, "loss", float(i), i, 1_700_000_000_000_000 + i) for i in range(7)])
    with open(owner / f"{1_700_000_000_000_000_000:020d}-metrics-{'ab' * 16}.arrow", "wb") as f:
        with pa.ipc.new_file(f, data.schema) as w:
            w.write_table(data)
    report = lake.recover()
    assert report.rows == 7 and report.owners[0].error is None
    assert lake.get_metric_history(run.run_id, "loss")["step"].to_list() == list(range(7))
    assert not owner.exists()


def test_a_torn_record_ends_the_log(tmp_path):
    spool = Spool(tmp_path / "spool")
    b1, b2 = Batch("metrics", pa.table({"x": [1, 2]})), Batch("runs", pa.table({"x": [3]}))
    spool.write_many([b1, b2])
    path = next(spool.dir.glob("*.lkspool"))
    with open(path, "ab") as f:  # a crash in the middle of the next write
        f.write(_HEAD.pack(b"LKS1", 40, 4000, 0) + b"{" * 20)
    segs = list_segments(spool.dir)
    assert [(s.table, s.batch_id) for s in segs] == [("metrics", b1.batch_id), ("runs", b2.batch_id)]
    assert segs[1].read().column("x").to_pylist() == [3]
    spool.mark_committed(b1)
    assert path.exists()  # b2 still waits in it
    spool.close()  # b2 was never committed: its folder stays for recovery, the lock released
    dead = list(claim_dead_owners(tmp_path / "spool"))
    # b1's record stays in the file until all of it is committed; recovery finds b1 by its batch id
    assert len(dead) == 1 and [s.batch_id for s in dead[0].segments()] == [b1.batch_id, b2.batch_id]
    dead[0].release(remove=True)


def test_batch_ids_are_written_as_ranges():
    ids = [f"abc-metrics-{n}" for n in (1, 2, 3, 5)] + ["0123456789abcdef"]
    enc = encode_ids(ids)
    assert enc == "abc-metrics-1..3,abc-metrics-5,0123456789abcdef"
    assert all(ids_contain(enc, i) for i in ids)
    assert not ids_contain(enc, "abc-metrics-4") and not ids_contain(enc, "abc-params-2")
    assert not ids_contain(enc, "abd-metrics-2") and not ids_contain("", "x")


def test_old_metadata_files_are_deleted_on_new_and_existing_tables(tmp_path):
    from lakeml.storage.contract import load_contracts

    keep = int(load_contracts()["metrics"].properties["write.metadata.previous-versions-max"])
    kw = {"commit_interval": 3600, "lakeml.maintenance.auto": "false"}
    with lakeml.connect(warehouse=tmp_path / "wh", **kw) as old:
        run = old.create_run("meta")
        old.flush()
        # a table made by an older version: no deletion, pyiceberg's default of 100 versions
        with old.store.table("metrics").transaction() as tx:
            tx.remove_properties("write.metadata.delete-after-commit.enabled", "write.metadata.previous-versions-max")
    lake = lakeml.connect(warehouse=tmp_path / "wh", **kw)  # a new process opens it and evolves it
    try:
        for i in range(keep + 8):
            lake.log_metric(run.run_id, "x", float(i), step=i)
            lake.flush()
        tbl = lake.store.reload("metrics")
        assert tbl.properties["write.metadata.delete-after-commit.enabled"] == "true"
        files = list((tmp_path / "wh" / lake.config.namespace / "metrics" / "metadata").glob("*.metadata.json"))
        assert len(files) == keep + 1, len(files)  # the current one and the `keep` before it
        assert len(tbl.metadata.metadata_log) == keep
    finally:
        lake.close()


BACKGROUND_CHILD = r"""
import atexit, json, sys
import lakeml
from tests.workers.lakes import open_spec

def record_modules():  # runs after lakeml's exit hook (threading's exit hooks run before atexit's)
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(sorted(sys.modules)))

atexit.register(record_modules)
lakeml.set_lake(open_spec(json.loads(sys.argv[1])))
with lakeml.start_run(experiment="drained", run_name="short") as run:
    lakeml.log_params({"lr": "0.5"})
    for s in range(20):
        lakeml.log_metric("loss", 1.0 / (s + 1), step=s)
print(run.info.run_id if hasattr(run, "info") else run.run_id, flush=True)
"""

READER_CHILD = r"""
import json, sys
from tests.workers.lakes import open_spec

lake = open_spec(json.loads(sys.argv[1]))
run = lake.get_run(sys.argv[2])
print(json.dumps({"status": run.status.value, "params": run.params,
                  "steps": lake.get_metric_history(sys.argv[2], "loss").height}))
lake.close()
"""


def _exit_drain_child(lake, tmp_path, py, **env):
    script = tmp_path / "child.py"
    script.write_text(BACKGROUND_CHILD)
    modules = tmp_path / "modules.txt"
    child_env = {k: v for k, v in os.environ.items() if k != "LAKEML_EXIT_DRAIN"}
    out = subprocess.run([py, str(script), json.dumps(lake_spec(lake)), str(modules)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**child_env, "PYTHONPATH": str(ROOT), **env})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split("\n")[0], set(modules.read_text().split())


def test_by_default_a_process_leaves_its_spool_to_a_helper_and_readers_wait_for_it(file_lake, tmp_path, py):
    """The default exit drain: the process exits without ever importing the write stack; a detached
    helper commits its spool once it is gone; another process reading right after it exited (with
    lakeml.connect(), or the CLI) finds the run FINISHED with all its rows: reads wait for the helper."""
    lake = file_lake
    lake.init()
    run_id, modules = _exit_drain_child(lake, tmp_path, py)
    assert not {m for m in modules if m.split(".")[0] in ("pyiceberg", "pyarrow")}  # the helper commits
    reader = tmp_path / "reader.py"
    reader.write_text(READER_CHILD)
    out = subprocess.run([py, str(reader), json.dumps(lake_spec(lake)), run_id], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"status": "FINISHED", "params": {"lr": "0.5"},
                                                               "steps": 20}
    root = spool_root(lake.config)
    assert "Traceback" not in (root / "drain.log").read_text()


def test_the_cli_right_after_a_process_exited_lists_its_run(file_lake, tmp_path, py):
    """`python train.py && lakeml runs list`: the cold CLI waits for the drain helper."""
    lake = file_lake
    lake.init()
    run_id, _ = _exit_drain_child(lake, tmp_path, py)
    cli = Path(py).parent / "lakeml"
    out = subprocess.run([str(cli), "runs", "list", "-e", "drained", "-w", str(lake.config.warehouse_dir),
                          "-o", "json"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads(out.stdout)
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "FINISHED")]


def test_wait_for_drains_lets_plain_readers_see_an_exited_process(file_lake, tmp_path, py):
    """Readers without lakeml (plain pyiceberg) call drain.wait_for_drains before reading."""
    from lakeml.storage.drain import wait_for_drains

    lake = file_lake
    lake.init()
    run_id, _ = _exit_drain_child(lake, tmp_path, py)
    assert wait_for_drains(spool_root(lake.config), 300)
    runs = plain_catalog(lake_spec(lake)).load_table(f"{lake.config.namespace}.runs").scan().to_arrow()
    assert "FINISHED" in [s for r, s in zip(runs.column("run_id").to_pylist(), runs.column("status").to_pylist())
                          if r == run_id]


def test_inline_exit_drain_commits_in_the_process(file_lake, tmp_path, py):
    """LAKEML_EXIT_DRAIN=inline: the old behaviour, the process commits at exit itself."""
    lake = file_lake
    lake.init()
    run_id, modules = _exit_drain_child(lake, tmp_path, py, LAKEML_EXIT_DRAIN="inline")
    assert "pyiceberg" in modules
    assert not (spool_root(lake.config) / "drain.log").exists()  # no helper was started
    assert lake.get_run(run_id).status.value == "FINISHED"


def test_an_unknown_exit_drain_mode_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEML_EXIT_DRAIN", "later")
    with pytest.raises(lakeml.errors.ConfigError, match="inline.*background"):
        lakeml.connect(warehouse=tmp_path / "wh")


LONG_CHILD = r"""
import json, sys, time
from tests.workers.lakes import open_spec

lake = open_spec(json.loads(sys.argv[1]), commit_interval=0.2)
run = lake.create_run("live", run_name="long")
lake.log_metric(run.run_id, "loss", 1.0, step=0)
time.sleep(0.5)  # longer than the commit interval: the next logging call imports pyarrow
lake.log_metric(run.run_id, "loss", 0.5, step=1)
print(run.run_id, flush=True)
sys.stdin.read()  # stays alive (and its run RUNNING) until the test is done reading
"""


def test_a_long_run_commits_as_it_goes_with_the_default_exit_drain(file_lake, tmp_path, py):
    """A process that leaves its spool to a helper at exit still commits while it lives, once it has
    lived one commit interval: other processes see a long run's metrics before it ends."""
    import time

    lake = file_lake
    lake.init()
    script = tmp_path / "long.py"
    script.write_text(LONG_CHILD)
    env = {k: v for k, v in os.environ.items() if k != "LAKEML_EXIT_DRAIN"}
    child = subprocess.Popen([py, str(script), json.dumps(lake_spec(lake))], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**env, "PYTHONPATH": str(ROOT)})
    try:
        run_id = child.stdout.readline().strip()
        assert run_id
        steps: list = []
        for _ in range(1200):  # the child's committer works in the background: wait for it (no time asserted)
            tbl = plain_catalog(lake_spec(lake)).load_table(f"{lake.config.namespace}.metrics")
            steps = sorted(tbl.scan().to_arrow().column("step").to_pylist())
            if steps == [0, 1]:
                break
            time.sleep(0.1)
        assert steps == [0, 1]
        assert child.poll() is None  # committed by the live process, not by a helper after it
    finally:
        child.stdin.close()
        child.wait(timeout=120)
