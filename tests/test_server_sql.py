"""``POST /api/v1/sql`` and ``GET /api/v1/sql/examples``: read-only, row and time limits, JSON and Arrow,
DuckDB's own error messages, scopes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import lakeml
from lakeml.server.app import create_app
from lakeml.server.auth import TokenStore
from lakeml.server.settings import ServerSettings

HEAVY = "SELECT sum(a.range * b.range) FROM range(100000) a, range(1000000) b"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    lake = lakeml.connect(warehouse=tmp_path_factory.mktemp("sql") / "wh", commit_interval=0.2)
    runs = []
    for i in range(3):
        run = lake.create_run("sql-api", run_name=f"r{i}")
        lake.log_params(run.run_id, {"lr": 0.1 * (i + 1)})
        for step in range(5):
            lake.log_metric(run.run_id, "loss", 1.0 / (step + 1 + i), step=step)
        lake.set_terminated(run.run_id, "FINISHED")
        runs.append(run.run_id)
    lake.flush()
    app = create_app(lake, ServerSettings(sql_row_limit=7, sql_time_limit=1.0))
    yield lake, app, runs
    lake.close()


def post(app, body=None, headers=None, **kw) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post("/api/v1/sql", json=body, headers=headers, **kw)

    return asyncio.run(go())


def get(app, path: str, headers=None) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def test_json_answer_over_the_views(seeded):
    lake, app, runs = seeded
    r = post(app, {"sql": "SELECT run_id, run_name, status FROM lakeml.runs_latest "
                          "WHERE experiment_name = $1 ORDER BY run_name", "params": ["sql-api"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["name"] for c in body["columns"]] == ["run_id", "run_name", "status"]
    assert body["columns"][0]["type"] == "string"
    assert [row[1] for row in body["rows"]] == ["r0", "r1", "r2"]
    assert {row[0] for row in body["rows"]} == set(runs)
    assert body["row_count"] == 3 and body["truncated"] is False and body["elapsed_ms"] >= 0
    # named parameters, and values JSON cannot hold as numbers
    r = post(app, {"sql": "SELECT $x::DOUBLE AS x, 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i, "
                          "TIMESTAMPTZ '2026-01-02 03:04:05+00' AS t, [1, 2] AS l, {'a': 1} AS s",
                   "params": {"x": 2.5}})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[2.5, "nan", "inf", "2026-01-02T03:04:05+00:00", [1, 2], {"a": 1}]]


def test_row_limit_is_reported(seeded):
    lake, app, _ = seeded
    r = post(app, {"sql": "SELECT * FROM lakeml.metrics ORDER BY run_id, step"})  # 15 rows, server cap 7
    assert r.status_code == 200
    assert r.json()["row_count"] == 7 and r.json()["truncated"] is True and r.json()["limit"] == 7
    r = post(app, {"sql": "SELECT * FROM range(100) ORDER BY range DESC", "limit": 3})
    assert r.json()["rows"] == [[99], [98], [97]] and r.json()["truncated"] is True
    r = post(app, {"sql": "SELECT * FROM range(3)", "limit": 3})
    assert r.json()["row_count"] == 3 and r.json()["truncated"] is False
    r = post(app, {"sql": "SELECT * FROM range(3)", "limit": 1000})  # the client cannot raise the cap
    assert r.json()["limit"] == 7
    # statements that cannot be wrapped are cut after the fact
    r = post(app, {"sql": "SELECT 1; SELECT * FROM range(20)"})
    assert r.json()["row_count"] == 7 and r.json()["truncated"] is True


def test_arrow_answer(seeded):
    import pyarrow as pa

    lake, app, _ = seeded
    for kw in ({"body": {"sql": "SELECT * FROM range(10)", "format": "arrow"}},
               {"body": {"sql": "SELECT * FROM range(10)"},
                "headers": {"Accept": "application/vnd.apache.arrow.stream"}}):
        r = post(app, **kw)
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.arrow.stream"
        table = pa.ipc.open_stream(r.content).read_all()
        assert table.column(0).to_pylist() == list(range(7))
        assert r.headers["x-lakeml-truncated"] == "true" and r.headers["x-lakeml-row-count"] == "7"


def test_errors_keep_duckdb_messages_and_carets(seeded):
    lake, app, _ = seeded
    r = post(app, {"sql": "SELECT nope FROM lakeml.runs_latest"})
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert 'Referenced column "nope" not found' in msg
    assert "LINE 1: SELECT nope FROM lakeml.runs_latest" in msg and "\n" in msg and "^" in msg
    r = post(app, {"sql": "SELECT 1 AS a,\n  nope2 AS b"})
    assert "LINE 2:" in r.json()["error"]["message"]  # positions are those of the query as sent
    r = post(app, {"sql": "SELEC 1"})
    msg = r.json()["error"]["message"]
    assert r.status_code == 400 and "syntax error" in msg and "^" in msg
    r = post(app, {"sql": "SELECT * FROM lakeml.no_such_table"})
    assert r.status_code == 400 and "lakeml.runs_latest" in r.json()["error"]["message"]  # lists what exists
    for bad in ({}, {"sql": ""}, {"sql": 1}, {"sql": "SELECT 1", "limit": -1}, {"sql": "SELECT 1", "format": "csv"},
                {"sql": "SELECT 1", "bogus": 1}):
        r = post(app, bad)
        assert r.status_code == 400, bad
        assert r.json()["error"]["field"], bad
    r = post(app, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t AS SELECT 1",
    "COPY (SELECT 1) TO '/tmp/lakeml-sql-test.csv'",
    "ATTACH '/tmp/lakeml-sql-test.duckdb' AS x",
    "INSTALL httpfs",
    "SET threads = 1",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM query('SELECT 1')",
])
def test_writes_and_outside_files_are_refused(seeded, sql):
    lake, app, _ = seeded
    r = post(app, {"sql": sql})
    if sql == "SELECT * FROM '/etc/passwd'":  # replacement scans are off: not even looked up as a file
        assert r.status_code == 400 and "does not exist" in r.text and "root:" not in r.text
        return
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "PERMISSION_DENIED"


def test_time_limit_interrupts_and_the_engine_goes_on(seeded):
    lake, app, _ = seeded
    r = post(app, {"sql": HEAVY})
    assert r.status_code == 408, r.text
    assert "time limit of 1s" in r.json()["error"]["message"]
    r = post(app, {"sql": "SELECT count(*) AS n FROM lakeml.metrics"})
    assert r.status_code == 200 and r.json()["rows"] == [[15]]


def test_examples(seeded):
    lake, app, _ = seeded
    r = get(app, "/api/v1/sql/examples")
    assert r.status_code == 200
    by_name = {e["name"]: e for e in r.json()["examples"]}
    assert "best_run_per_experiment" in by_name
    ex = by_name["best_run_per_experiment"]
    assert ex["params"] == ["metric"] and ex["description"].startswith("Best run per experiment")
    assert "lakeml.leaderboard" in ex["sql"]
    r = post(app, {"sql": ex["sql"], "params": {"metric": "loss"}})
    assert r.status_code == 200 and r.json()["row_count"] == 1  # the example runs as the portal would run it


def test_scopes(tmp_path):
    with lakeml.connect(warehouse=tmp_path / "wh") as lake:
        _, token = TokenStore(lake.store).create("viewer", "read")
        app = create_app(lake, ServerSettings())
        assert post(app, {"sql": "SELECT 1"}).status_code == 401
        r = post(app, {"sql": "SELECT 1"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["rows"] == [[1]]
        assert get(app, "/api/v1/sql/examples").status_code == 401
