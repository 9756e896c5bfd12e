"""The core of ``lakeml server``: /health, /metrics, body limits, the start line, workers, and a clean
stop on SIGTERM that commits what the server holds."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import shutil
import time

import httpx
import pytest
from fastapi import APIRouter, Request

import lakeml
from lakeml.server.app import create_app
from lakeml.server.middleware import LARGE_BODY_PREFIXES, iter_body
from lakeml.server.settings import ServerSettings
from tests.servers import LakemlServer


def call(app, method: str, path: str, **kw) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


uploads = APIRouter()


@uploads.put("/test/upload")
async def _upload(request: Request) -> dict:
    n = 0
    async for chunk in iter_body(request, limit=5000):
        n += len(chunk)
    return {"bytes": n}


@pytest.fixture
def slow_lake(tmp_path):
    """A lake whose committer only commits when asked (rows stay pending for the metrics to see)."""
    lake = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=3600)
    yield lake
    lake.close()


def test_health_reports_catalog_and_storage(tmp_path):
    wh = tmp_path / "wh"
    lake = lakeml.connect(warehouse=wh)
    try:
        app = create_app(lake, ServerSettings())
        r = call(app, "GET", "/health")
        assert r.status_code == 200 and r.json()["catalog"] == "ok" and r.json()["storage"] == "ok"
        moved = tmp_path / "moved"
        shutil.move(str(wh), str(moved))  # the storage disappears under the server
        try:
            r = call(app, "GET", "/health")
            assert r.status_code == 503, r.text
            assert r.json()["status"] == "unavailable" and r.json()["storage"] != "ok"
            assert str(wh) in r.json()["storage"] or "wh" in r.json()["storage"]
        finally:
            shutil.move(str(moved), str(wh))
        assert call(app, "GET", "/health").status_code == 200
    finally:
        lake.close()


def test_metrics_count_requests_queue_depth_and_commits(slow_lake):
    app = create_app(slow_lake, ServerSettings())
    run = slow_lake.create_run("metrics-test")
    slow_lake.log_metrics(run.run_id, {"a": 1.0, "b": 2.0})
    call(app, "POST", "/api/v1/sql", json={"sql": "SELECT 1"})
    call(app, "POST", "/api/v1/sql", json={"sql": "SELEC"})
    call(app, "GET", "/no/such/path")
    text = call(app, "GET", "/metrics").text

    def value(prefix: str) -> float:
        lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
        assert lines, f"no metric line starting {prefix!r} in:\n{text}"
        return float(lines[0].rsplit(" ", 1)[1])

    # the SQL read committed the pending rows first (read-your-writes), so commits and rows show
    assert value('lakeml_http_requests_total{method="POST",route="/api/v1/sql",status="200"}') == 1
    assert value('lakeml_http_requests_total{method="POST",route="/api/v1/sql",status="400"}') == 1
    assert value('lakeml_http_requests_total{method="GET",route="unmatched",status="404"}') == 1
    assert value('lakeml_http_request_duration_seconds_count{method="POST",route="/api/v1/sql"}') == 2
    assert value("lakeml_commits_total") >= 2
    assert value("lakeml_rows_committed_total") >= 3  # the run and two metric points at least
    assert "lakeml_storage_retries" in text
    # rows logged now stay pending until the next commit: the gauge shows them per table
    slow_lake.log_metrics(run.run_id, {"c": 3.0, "d": 4.0, "e": 5.0})
    text = call(app, "GET", "/metrics").text
    assert value('lakeml_committer_pending_rows{table="metrics"}') == 3
    slow_lake.flush()
    text = call(app, "GET", "/metrics").text
    assert value('lakeml_committer_pending_rows{table="metrics"}') == 0


def test_body_limits_while_streaming_and_for_artifacts(file_lake):
    app = create_app(file_lake, ServerSettings(max_body_bytes=2000, max_artifact_bytes=10_000))
    app.include_router(uploads)
    # Content-Length says too much: refused before reading
    r = call(app, "POST", "/api/v1/sql", content=b"x" * 2001, headers={"content-type": "application/json"})
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["field"] == "body" and "2000 bytes" in err["message"] and "--max-body" in err["message"]

    async def chunks(n: int, size: int = 700):  # no Content-Length: counted while streaming
        for _ in range(n):
            yield b"y" * size

    r = call(app, "POST", "/api/v1/sql", content=chunks(4), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "--max-body" in r.json()["error"]["message"]
    r = call(app, "POST", "/api/v1/sql", content=chunks(2), headers={"content-type": "application/json"})
    assert r.status_code == 400  # under the limit: a JSON error, not a size error
    # artifact paths get the larger cap
    assert any(p.startswith("/api/2.0/mlflow-artifacts/") for p in LARGE_BODY_PREFIXES)
    r = call(app, "PUT", "/api/2.0/mlflow-artifacts/artifacts/x.bin", content=b"z" * 5000)
    assert r.status_code != 413
    r = call(app, "PUT", "/api/2.0/mlflow-artifacts/artifacts/x.bin", content=chunks(20))
    assert r.status_code == 413 and "--max-artifact" in r.json()["message"]  # MLflow's error shape there
    # the helper for streaming routes applies its own limit
    assert call(app, "PUT", "/test/upload", content=chunks(2)).json() == {"bytes": 1400}
    r = call(app, "PUT", "/test/upload", content=chunks(8))
    assert r.status_code == 413


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    base = tmp_path_factory.mktemp("core")
    srv = LakemlServer(base / "wh", base_dir=base, args=["--max-body", "4096"])
    yield srv
    srv.stop()


def test_real_server_start_line_and_chunked_limit(live):
    deadline = time.monotonic() + 30  # printed once the tokens are read, just after the server listens
    while f"lakeml server on {live.url} (catalog " not in live.log_path.read_text():
        assert time.monotonic() < deadline, live.log_path.read_text()
        time.sleep(0.05)
    assert "auth: none)" in live.log_path.read_text()
    # a chunked upload over a real socket, without Content-Length
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    conn.putrequest("POST", "/api/v1/sql")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(10):
            chunk = b"a" * 1000
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before reading everything
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 413 and "4096 bytes" in body["error"]["message"]
    r = httpx.get(live.url + "/health", timeout=30)
    assert r.status_code == 200 and r.json()["storage"] == "ok"


def test_sigterm_commits_what_the_workers_hold(tmp_path):
    """Two workers (uvicorn processes on one port) serve; rows accepted just before SIGTERM are in the
    tables once the server has exited (read by a fresh lake), though the committer was told to wait an hour."""
    wh = tmp_path / "wh"
    srv = LakemlServer(wh, base_dir=tmp_path, args=["--workers", "2"], env={"LAKEML_SERVER_COMMIT_INTERVAL": "3600"})
    try:
        assert "2 workers" in srv.log_path.read_text()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            run_ids = [_log_over_http(c) for _ in range(4)]  # keep-alive: may all land on one worker
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            run_ids.append(_log_over_http(c))
        os.killpg(srv.proc.pid, signal.SIGTERM)
        assert srv.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its shutdown
    finally:
        srv.stop()
    with lakeml.connect(warehouse=wh) as lake:
        got = lake.sql("SELECT run_id, count(*) AS n FROM lakeml.metrics GROUP BY run_id")
        assert dict(got.iter_rows()) == {r: 100 for r in run_ids}


def _log_over_http(c: httpx.Client) -> str:
    """Create a run and log 100 points through the server's MLflow REST API."""
    r = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0", "start_time": int(time.time() * 1000)})
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["info"]["run_id"]
    metrics = [{"key": "loss", "value": i / 10, "timestamp": 1_700_000_000_000 + i, "step": i} for i in range(100)]
    r = c.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
    assert r.status_code == 200, r.text
    return run_id
