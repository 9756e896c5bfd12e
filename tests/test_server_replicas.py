"""Stateless replicas: two ``lakeml server`` processes on one warehouse, written to concurrently (different
runs, and one run through both) keep every row exactly once, and each reads everything after a flush."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

import lakeml
from tests.servers import LakemlServer

CLIENTS = 4
BATCHES = 5
POINTS = 20


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    base = tmp_path_factory.mktemp("replicas")
    wh = base / "wh"
    first = LakemlServer(wh, base_dir=base)
    second = LakemlServer(wh, base_dir=base)
    yield wh, first, second
    first.stop()
    second.stop()


def create_run(c: httpx.Client, name: str) -> str:
    r = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0", "run_name": name,
                                                    "start_time": int(time.time() * 1000)})
    assert r.status_code == 200, r.text
    return r.json()["run"]["info"]["run_id"]


def log(c: httpx.Client, run_id: str, key: str, steps: range) -> None:
    metrics = [{"key": key, "value": float(s), "timestamp": 1_700_000_000_000 + s, "step": s} for s in steps]
    # a run created on the other replica is found once that replica has committed it: the server waits
    # for it (TrackingClient.unknown_run_grace), so a stock client needs no retry on 404
    r = c.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
    assert r.status_code == 200, r.text


def test_two_replicas_keep_every_row_exactly_once(replicas):
    wh, first, second = replicas
    urls = [first.url, second.url]
    with httpx.Client(base_url=first.url, timeout=60) as c:
        shared = create_run(c, "shared")
    errors: list[BaseException] = []
    own: dict[int, str] = {}

    def client(k: int) -> None:
        try:
            with httpx.Client(base_url=urls[k % 2], timeout=60) as c, \
                    httpx.Client(base_url=urls[(k + 1) % 2], timeout=60) as other:
                own[k] = run_id = create_run(c, f"client-{k}")
                for b in range(BATCHES):
                    log(c, run_id, "loss", range(b * POINTS, (b + 1) * POINTS))
                    # the shared run gets disjoint steps from every client, alternating replicas
                    via = c if b % 2 == 0 else other
                    log(via, shared, f"c{k}", range(b * POINTS, (b + 1) * POINTS))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for url in urls:
        assert httpx.post(url + "/api/v1/server/flush", timeout=120).status_code == 200

    expected = {run_id: BATCHES * POINTS for run_id in own.values()}
    expected[shared] = CLIENTS * BATCHES * POINTS
    sql = ("SELECT run_id, count(*) AS n, count(DISTINCT (key, step)) AS d FROM lakeml.metrics "
           "GROUP BY run_id ORDER BY run_id")
    for url in urls:  # each replica reads everything, every point once
        r = httpx.post(url + "/api/v1/sql", json={"sql": sql}, timeout=60)
        assert r.status_code == 200, r.text
        got = {row[0]: (row[1], row[2]) for row in r.json()["rows"]}
        assert got == {run_id: (n, n) for run_id, n in expected.items()}, url
    # and so does a plain client of the lake
    with lakeml.connect(warehouse=wh) as lake:
        frame = lake.sql(sql)
        assert {r: (n, d) for r, n, d in frame.iter_rows()} == {run_id: (n, n) for run_id, n in expected.items()}
        runs = lake.sql("SELECT count(*) AS n, count(DISTINCT run_id) AS d FROM lakeml.runs_latest")
        assert runs.row(0) == (CLIENTS + 1, CLIENTS + 1)
