"""``kill -9`` of ``lakeml server`` while clients log: after a restart on the same warehouse the
clients' retries are recognised (idempotency keys spooled with the rows), so every point is read back
from the Iceberg tables exactly once."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pyarrow as pa
import pytest

import lakeml
from tests.servers import LakemlServer

ARROW = "application/vnd.apache.arrow.stream"


def read_points(warehouse) -> list[dict]:
    lake = lakeml.connect(warehouse=str(warehouse))
    try:
        return lake.store.table("metrics", refresh=True).scan().to_arrow().to_pylist()
    finally:
        lake.close()


@pytest.fixture
def journal(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEML_REMOTE_JOURNAL", str(tmp_path / "journal"))
    return tmp_path / "journal"


def test_kill_9_retries_are_recognised_and_every_point_lands_once(tmp_path, journal):
    # no timed commits: at the kill, everything acknowledged is in the server's spool only
    srv = LakemlServer(tmp_path / "wh", base_dir=tmp_path, env={"LAKEML_SERVER_COMMIT_INTERVAL": "600"})
    clients, points, runs = 5, 1000, []
    started = threading.Barrier(clients + 1)
    errors: list[BaseException] = []
    lakes = [lakeml.connect(srv.url) for _ in range(clients)]
    for lk in lakes:
        lk._sender.interval = 0.05  # many small requests: some are in flight at the kill

    def work(lake) -> None:
        try:
            run = lake.create_run("load", run_name=f"c{len(runs)}")
            runs.append(run.run_id)
            started.wait()
            for i in range(points):
                lake.log_metric(run.run_id, "loss", float(i), step=i)
                if i % 50 == 0:
                    time.sleep(0.02)
            lake.set_terminated(run.run_id)
            lake.flush(timeout=120)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(lk,)) for lk in lakes]
    try:
        # 1. one batch acknowledged just before the kill: its retry must be recognised after the restart
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            rid = http.post("/api/v1/runs", json={"experiment": "crash"}).json()["run_id"]
            sink = pa.BufferOutputStream()
            t = pa.table({"run_id": [rid] * 100, "key": ["k"] * 100, "value": [float(i) for i in range(100)],
                          "step": list(range(100))})
            with pa.ipc.new_stream(sink, t.schema) as w:
                w.write_table(t)
            body, key = sink.getvalue().to_pybytes(), uuid.uuid4().hex
            hdr = {"Content-Type": ARROW, "X-Lakeml-Batch-Id": key,
                   "X-Lakeml-Batch-Time": str(int(time.time() * 1000))}
            first = http.post("/api/v1/batch", content=body, headers=hdr)
            assert first.json() == {"accepted": 100, "duplicate": False}, first.text
        # 2. clients logging at full speed
        for th in threads:
            th.start()
        started.wait()
        deadline = time.monotonic() + 60
        while min(lk._sender.sent for lk in lakes) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.kill()  # acknowledged = in the server's fsynced spool, maybe not yet in Iceberg
        time.sleep(0.3)  # clients keep logging and retrying meanwhile
        srv.restart()
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            again = http.post("/api/v1/batch", content=body, headers={**hdr, "X-Lakeml-Retry": "1"})
            assert again.json() == {"accepted": 0, "duplicate": True}, again.text
        for th in threads:
            th.join(180)
        assert not errors, errors
        for lk in lakes:
            lk.close(timeout=30)
        with lakeml.connect(srv.url) as check:
            statuses = {r: check.get_run(r).status for r in runs}
            assert len(check.get_metric_history(rid)) == 100
    finally:
        srv.stop()  # SIGTERM: the server commits what it acknowledged
    rows = read_points(tmp_path / "wh")
    assert sorted(r["step"] for r in rows if r["run_id"] == rid) == list(range(100))
    by_run: dict[str, list[int]] = {}
    for r in rows:
        if r["run_id"] != rid:
            by_run.setdefault(r["run_id"], []).append(r["step"])
    assert sorted(by_run) == sorted(runs)
    for run_id, steps in by_run.items():
        assert sorted(steps) == list(range(points)), (run_id, len(steps), len(set(steps)))
    assert set(statuses.values()) == {lakeml.RunStatus.FINISHED}
