"""`lakeml models serve`: MLflow's scoring protocol, signature checks, metadata and metrics, inference
logging to the predictions table, alias following with an atomic swap, and the CLI with 2 workers.

Real HTTP: uvicorn on a loopback port (in a thread, or the CLI as a subprocess), a real lake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

import lakeml
from lakeml.serving.app import ServeOptions
from lakeml.server.serving import build
from tests.serving_util import ThreadServer, register_constant, register_iris, wait_for
from tests.servers import free_port

pytest.importorskip("sklearn")
pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    wh = tmp_path_factory.mktemp("serving") / "wh"
    lake = lakeml.connect(warehouse=wh, commit_interval=0.2, commit_deadline=30)
    clf, X = register_iris(lake)
    lake.flush()
    yield lake, clf, X, wh
    lake.close()


@pytest.fixture(scope="module")
def iris_server(seeded):
    lake, clf, X, _ = seeded
    app = build(ServeOptions(model_uri="models:/iris@champion", max_rows=50, service="iris-api"), lake=lake)
    srv = ThreadServer(app)
    yield srv, app.state.service, clf, X
    srv.stop()


def _post(url, payload=None, *, content=None, headers=None):
    if content is not None:
        return httpx.post(url + "/invocations", content=content, headers=headers or {}, timeout=30)
    return httpx.post(url + "/invocations", json=payload, headers=headers or {}, timeout=30)


def test_every_scoring_format_answers_like_the_model(iris_server):
    srv, _, clf, X = iris_server
    rows = X.iloc[[0, 60, 120]]
    want = clf.predict(rows).tolist()
    recs = rows.to_dict(orient="records")
    cols = list(rows.columns)
    bodies = {
        "dataframe_split": {"dataframe_split": {"columns": cols, "data": rows.values.tolist()}},
        "dataframe_records": {"dataframe_records": recs},
        "instances": {"instances": recs},
        "instances (lists)": {"instances": rows.values.tolist()},
        "inputs (columns)": {"inputs": {c: rows[c].tolist() for c in cols}},
    }
    for what, body in bodies.items():
        r = _post(srv.url, body)
        assert r.status_code == 200, (what, r.text)
        assert r.json() == {"predictions": want}, what
        assert r.headers["x-model-version"] == "1"
    csv = ",".join(cols) + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows.values.tolist())
    r = _post(srv.url, content=csv.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want}
    # columns in another order are put in the signature's order
    shuffled = {"dataframe_split": {"columns": cols[::-1], "data": rows[cols[::-1]].values.tolist()}}
    assert _post(srv.url, shuffled).json() == {"predictions": want}


def test_request_id_is_echoed_or_made(iris_server):
    srv, _, _, X = iris_server
    body = {"dataframe_records": X.iloc[:1].to_dict(orient="records")}
    assert _post(srv.url, body, headers={"X-Request-Id": "client-42"}).headers["x-request-id"] == "client-42"
    made = _post(srv.url, body).headers["x-request-id"]
    assert len(made) == 32 and made != _post(srv.url, body).headers["x-request-id"]
    bad = _post(srv.url, body, headers={"X-Request-Id": "no spaces allowed"}).headers["x-request-id"]
    assert bad != "no spaces allowed" and len(bad) == 32
    assert httpx.get(srv.url + "/health").headers["x-request-id"]
    assert httpx.get(srv.url + "/nowhere").headers["x-request-id"]


@pytest.mark.parametrize("body, status, words", [
    ({"dataframe_records": [{"sepal_length": 1.0, "sepal_width": 1.0, "petal_length": 1.0}]}, 400,
     ["missing column", "'petal_width'"]),
    ({"dataframe_records": [{"sepal_length": 1.0, "sepal_width": 1.0, "petal_length": 1.0, "petal_width": 1.0,
                             "colour": "red"}]}, 400, ["unknown column", "'colour'"]),
    ({"dataframe_records": [{"sepal_length": 1.0, "sepal_width": "wide", "petal_length": 1.0,
                             "petal_width": 1.0}]}, 400, ["'sepal_width'", "row 0", "double", '"wide"']),
    ({"dataframe_records": [{"sepal_length": 1.0, "sepal_width": None, "petal_length": 1.0,
                             "petal_width": 1.0}]}, 400, ["'sepal_width'", "null"]),
    ({"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                          "data": [[1.0, 1.0, 1.0, 1.0]] * 51}}, 400, ["51 rows", "limit of 50", "--max-rows"]),
    ({"instances": [[1.0, 2.0]]}, 400, ["2 values", "4 columns"]),
    ({"data": [[1.0]]}, 400, ["exactly one of", "dataframe_split"]),
    ({"dataframe_records": []}, 400, ["no rows"]),
])
def test_bad_input_is_a_400_naming_the_problem(iris_server, body, status, words):
    srv = iris_server[0]
    r = _post(srv.url, body)
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["error_code"] == "BAD_REQUEST"
    for w in words:
        assert w in doc["message"], (w, doc["message"])


@pytest.mark.parametrize("body", [
    b'{"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2.5], [3e-05 ,  -4], [ 0.1,1E3 ]]}}',
    b'{"instances": [[2.5, 1], [-4, 3e-05], [1E3, 0.1]]}',
    b'{"dataframe_records": [{"a": 2.5, "b": 1}, {"a": -4, "b": 3e-05}, {"b": 0.1, "a": 1E3}]}',
    b'{"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2.5], [3e-05, -4], [0.1, 1000]]}, "x": [[1]]}',
])
def test_logged_features_are_the_rows_as_sent(body):
    from lakeml.serving import protocol

    sig = {"inputs": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]}
    batch = protocol.validate(protocol.parse(body, "application/json"), sig)
    assert [json.loads(f) for f in batch.features_json()] == [{"a": 2.5, "b": 1}, {"a": -4, "b": 3e-05},
                                                              {"a": 1000.0, "b": 0.1}]


def test_logged_features_keep_odd_column_names():
    from lakeml.serving import protocol

    sig = {"inputs": [{"name": "rate%s", "type": "double"}, {"name": 'q"uote', "type": "long"}]}
    body = json.dumps({"dataframe_split": {"columns": ["rate%s", 'q"uote'], "data": [[0.5, 2], [1, 3]]}}).encode()
    batch = protocol.validate(protocol.parse(body, None), sig)
    assert [json.loads(f) for f in batch.features_json()] == [{"rate%s": 0.5, 'q"uote': 2}, {"rate%s": 1, 'q"uote': 3}]


def test_malformed_bodies(iris_server):
    srv = iris_server[0]
    r = _post(srv.url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = _post(srv.url, content=b"a,b\n1", headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "CSV line 2" in r.json()["message"]
    r = _post(srv.url, content=b"x", headers={"Content-Type": "application/xml"})
    assert r.status_code == 400 and "application/xml" in r.json()["message"]


def test_health_version_metadata(iris_server, seeded):
    srv, service, _, _ = iris_server
    lake = seeded[0]
    assert httpx.get(srv.url + "/health").json()["model_version"] == 1
    assert httpx.get(srv.url + "/ping").status_code == 200
    ver = httpx.get(srv.url + "/version").json()
    assert ver["lakeml"] == lakeml.__version__ and ver["model_name"] == "iris" and ver["service"] == "iris-api"
    meta = httpx.get(srv.url + "/metadata").json()
    assert meta["model_uri"] == "models:/iris@champion" and meta["resolved_uri"] == "models:/iris/1"
    assert [c["name"] for c in meta["signature"]["inputs"]] == ["sepal_length", "sepal_width", "petal_length",
                                                                 "petal_width"]
    lin = lake.model_lineage("iris", 1)
    assert meta["lineage"]["run_id"] == lin.run_id and meta["lineage"]["params"] == {"C": "1.0"}
    assert meta["lineage"]["metrics"]["accuracy"] == pytest.approx(lin.metrics["accuracy"])
    assert meta["flavor"] == "sklearn" and meta["log_predictions"] is True
    assert meta["input_kind"] == "array"  # numeric columns: the fast path, checked equal at load time


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if line.split(" ")[0] == name or name.endswith("}"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_prometheus_metrics_count_requests_errors_and_latency(iris_server):
    srv, _, _, X = iris_server
    before = httpx.get(srv.url + "/metrics").text
    ok = {"dataframe_records": X.iloc[:3].to_dict(orient="records")}
    for _ in range(3):
        assert _post(srv.url, ok).status_code == 200
    assert _post(srv.url, {"nothing": 1}).status_code == 400
    after = httpx.get(srv.url + "/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    d = lambda n: _metric(text, n) - _metric(before, n)  # noqa: E731
    assert d('lakeml_serving_requests_total{status="200"}') == 3
    assert d('lakeml_serving_requests_total{status="400"}') == 1
    assert d("lakeml_serving_errors_total") == 1
    assert d("lakeml_serving_rows_total") == 9
    assert d("lakeml_serving_request_latency_seconds_count") == 4
    assert _metric(text, "lakeml_serving_model_version") == 1


def test_every_row_is_logged_to_the_predictions_table(iris_server, seeded):
    srv, service, clf, X = iris_server
    lake = seeded[0]
    rows = X.iloc[[5, 55, 105]]
    r = _post(srv.url, {"dataframe_records": rows.to_dict(orient="records")}, headers={"X-Request-Id": "log-ok"})
    assert r.status_code == 200
    bad = _post(srv.url, {"dataframe_records": [{"sepal_length": "x"}]}, headers={"X-Request-Id": "log-bad"})
    assert bad.status_code == 400
    service.logger.flush()
    got = lake.sql("SELECT * FROM lakeml.predictions WHERE request_id IN ('log-ok', 'log-bad') "
                   "ORDER BY request_id DESC, row_index").to_dicts()
    assert [(g["request_id"], g["row_index"], g["status"]) for g in got] == [
        ("log-ok", 0, 200), ("log-ok", 1, 200), ("log-ok", 2, 200), ("log-bad", -1, 400)]
    want = clf.predict(rows).tolist()
    for g, rec, p in zip(got, rows.to_dict(orient="records"), want):
        # float columns in: the features are typed (feature_names, feature_values), not JSON
        assert g["features"] is None and dict(zip(json.loads(g["feature_names"]), g["feature_values"])) == rec
        assert g["prediction"] == p and json.loads(g["prediction_json"]) == p
        assert (g["model_name"], g["model_version"], g["model_uri"], g["service"]) == (
            "iris", 1, "models:/iris@champion", "iris-api")
        assert g["latency_ms"] > 0 and g["error"] is None and g["ts"] is not None
    assert "missing column" in got[3]["error"] and got[3]["prediction"] is None


def test_follow_alias_swaps_without_dropping_requests(tmp_path):
    wh = tmp_path / "wh"
    admin = lakeml.connect(warehouse=wh, commit_interval=0.2)
    register_constant(admin, "const", 1.0, alias="live")
    v2 = register_constant(admin, "const", 2.0)
    admin.flush()
    lake = lakeml.connect(warehouse=wh, commit_interval=0.2)
    app = build(ServeOptions(model_uri="models:/const@live", follow_alias=True, poll_interval=0.1,
                             environment="staging", service="const-api"), lake=lake)
    srv = ThreadServer(app)
    results: list[tuple[int, str, object]] = []
    stop = threading.Event()

    def client():
        with httpx.Client(timeout=30) as c:
            for _ in range(5000):  # bounded; stops once the swap has been seen for a while
                if stop.is_set():
                    return
                r = c.post(srv.url + "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[0.5]]}})
                results.append((r.status_code, r.headers.get("x-model-version"),
                                r.json().get("predictions") if r.status_code == 200 else r.text))

    try:
        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        while len(results) < 20:
            time.sleep(0.01)
        admin.set_alias("const", "live", v2)
        deadline = time.monotonic() + 60
        while not any(v == "2" for _, v, _ in results[-10:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        n = len(results)
        while len(results) < n + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join(30)
        assert all(s == 200 for s, _, _ in results), [r for r in results if r[0] != 200][:3]
        for _, version, preds in results:  # each answer is wholly from one version
            assert preds == [1.0 if version == "1" else 2.0]
        versions = [v for _, v, _ in results]
        assert versions[0] == "1" and versions[-1] == "2"
        assert httpx.get(srv.url + "/metadata").json()["reloads"] == 1
        deps = admin.registry.deployments.list_deployments("const", environment="staging")
        assert [(d.version, d.service) for d in deps] == [(v2, "const-api")]  # recorded before the swap
        app.state.service.logger.flush()
        logged = dict(lake.sql("SELECT model_version, count(*) n FROM lakeml.predictions GROUP BY 1").rows())
        assert logged == {1: versions.count("1"), 2: versions.count("2")}  # each row: the version that scored it
    finally:
        stop.set()
        srv.stop()
        lake.close()
        admin.close()


def test_follow_alias_keeps_serving_when_the_new_version_fails_to_load(tmp_path):
    wh = tmp_path / "wh"
    lake = lakeml.connect(warehouse=wh, commit_interval=0.2)
    register_constant(lake, "c2", 1.0, alias="live")
    run = lake.create_run("serving")
    lake.log_model(run.run_id, lambda x: [0] * len(x), "model", pip_requirements=["no-such-package-xyz==1.0"])
    bad = lake.register_model("c2", run_id=run.run_id).version
    app = build(ServeOptions(model_uri="models:/c2@live", follow_alias=True, poll_interval=3600,
                             log_predictions=False), lake=lake)
    try:
        served = app.state.service.served
        lake.set_alias("c2", "live", bad)
        assert served.check() is False
        assert served.current.version == 1 and "no-such-package-xyz" in served.last_error
    finally:
        app.state.service.close()
        lake.close()


def test_cli_errors_are_one_line(seeded):
    from typer.testing import CliRunner

    from lakeml.cli.main import app as cli

    wh = str(seeded[3])
    r = CliRunner().invoke(cli, ["models", "serve", "models:/iris/1", "--follow-alias", "-w", wh])
    assert r.exit_code == 1 and "--follow-alias needs a models:/NAME@ALIAS URI" in r.output
    r = CliRunner().invoke(cli, ["models", "serve", "models:/nope@champion", "-w", wh])
    assert r.exit_code == 1 and "NotFoundError" in r.output and "nope" in r.output


def test_cli_serve_with_two_workers_commits_on_sigterm(seeded, tmp_path):
    lake, clf, X, wh = seeded
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "lakeml", "models", "serve", "models:/iris@champion",
                             "--port", str(port), "--workers", "2", "--warehouse", str(wh), "--service", "cli-api"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(url + "/health", proc=proc)
        rows = X.iloc[:2].to_dict(orient="records")
        with httpx.Client(timeout=30) as c:
            for i in range(10):
                r = c.post(url + "/invocations", json={"dataframe_records": rows}, headers={"X-Request-Id": f"cli-{i}"})
                assert r.status_code == 200 and r.json() == {"predictions": clf.predict(X.iloc[:2]).tolist()}
        # each worker logs its predictions through its own child process (serving/logproc.py)
        assert len(log_processes(proc.pid)) == 2
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    got = lake.sql("SELECT count(*) FROM lakeml.predictions WHERE service = 'cli-api'").rows()
    assert got == [(20,)], (tmp_path / "serve.log").read_text()[-3000:]


def log_processes(pgid: int, *, workers: bool = True) -> list[int]:
    """Pids of the prediction log processes in process group ``pgid``: multiprocessing children of a worker
    (the workers are multiprocessing children of the group's leader), or of the leader (``workers=False``)."""
    out = []
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid or (int(fields[1]) == pgid) == workers:
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    out.append(int(d))
        except (OSError, ValueError):
            continue
    return out


def test_prediction_logger_api(file_lake):
    from lakeml.serving.predlog import PredictionLogger

    pl = PredictionLogger(file_lake, model_name="m", model_version=2, model_uri="models:/m@a", service="svc")
    pl.log("abc", [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], [0.5, [1, 2]], 3.2, 200)
    pl.log("bad", [{"a": 1}], None, 1.0, 400, "wrong column")
    pl.log("nan", [{"a": 1}], [float("nan")], 1.0, 200, model_version=3)
    pl.log("lbl", [{"a": 1}], ["cat"], 1.0, 200)
    pl.log("one", [{"a": 1}], ["1"], 1.0, 200)
    pl.close()
    got = file_lake.sql("SELECT request_id, row_index, features, prediction, prediction_json, status, error, "
                        "model_version, service FROM lakeml.predictions ORDER BY request_id, row_index").rows()
    assert got == [
        ("abc", 0, '{"a": 1, "b": "x"}', 0.5, "0.5", 200, None, 2, "svc"),
        ("abc", 1, '{"a": 2, "b": "y"}', None, "[1, 2]", 200, None, 2, "svc"),
        ("bad", -1, '{"a": 1}', None, None, 400, "wrong column", 2, "svc"),
        ("lbl", 0, '{"a": 1}', None, '"cat"', 200, None, 2, "svc"),
        ("nan", 0, '{"a": 1}', None, "null", 200, None, 3, "svc"),
        ("one", 0, '{"a": 1}', 1.0, '"1"', 200, None, 2, "svc"),  # a numeric class label as a number
    ]
    assert pl.logged == 6 and pl.dropped == 0


@pytest.mark.parametrize("outputs", [
    [1, 0, 1], [0.25, float("nan"), float("inf")], [True, False, True], [1e-7, 1e300, -0.0]])
def test_columnar_prediction_log_equals_the_row_path(file_lake, outputs):
    """Requests handed over with their float input matrix and numeric output take the columnar path
    (lakeml.serving.predframe); their rows must equal those of the generic per-row path."""
    import numpy as np

    from lakeml.serving.predlog import PredictionLogger
    from lakeml.serving.protocol import Batch

    x = np.array([[0.1, -2.5, 3.0], [1e-9, float("nan"), 7.0], [2.0, 0.5, -1.25]])
    cols = ["a", "b/c~1", 'd"q']
    out = np.array(outputs)
    pl = PredictionLogger(file_lake, model_name="m", model_version=4, model_uri="models:/m@a", service="svc")
    pl.log("fast", Batch(cols, x.tolist()), out.tolist(), 2.5, 200, ts_us=1_700_000_000_000_000, inputs=x,
           outputs=out)
    pl.log("fast2", Batch(cols, x[:2].tolist()), out[:2].tolist(), 1.5, 200, ts_us=1_700_000_000_000_001,
           inputs=x[:2], outputs=out[:2])
    pl.log("rows", Batch(cols, x.tolist()), out.tolist(), 2.5, 200, ts_us=1_700_000_000_000_000)
    pl.close()
    got = file_lake.sql("SELECT request_id, row_index, ts, model_name, model_version, model_uri, service, "
                        "features, prediction, prediction_json, latency_ms, status, error, feature_names, "
                        "feature_values FROM lakeml.predictions ORDER BY request_id, row_index").rows()
    assert [(g[0], g[1]) for g in got] == [("fast", 0), ("fast", 1), ("fast", 2), ("fast2", 0), ("fast2", 1),
                                            ("rows", 0), ("rows", 1), ("rows", 2)]
    fast, rows = got[:3], got[5:]
    for f, r in zip(fast, rows):
        assert f[1:7] == r[1:7] and f[10:13] == r[10:13]
        assert f[8] == r[8] or (f[8] is None and r[8] is None)
        assert json.loads(f[9]) == json.loads(r[9])
        # the fast path types the features; the row path writes JSON (NaN as null)
        assert f[7] is None and json.loads(f[13]) == cols and r[13] is None and r[14] is None
        assert dict(zip(cols, f[14])) == json.loads(r[7])
    assert fast[1][14] == [1e-9, None, 7.0]
    # both forms read alike through the long-form view
    long = file_lake.sql("SELECT request_id, row_index, feature, value, text FROM lakeml.prediction_features "
                         "WHERE request_id IN ('fast', 'rows') ORDER BY row_index, feature, request_id").rows()
    assert len(long) == 18
    for f, r in zip(long[0::2], long[1::2]):
        assert (f[0], r[0]) == ("fast", "rows") and f[1:4] == r[1:4]
    assert {(g[1], g[2]): g[3] for g in long} == {(i, c): (None if np.isnan(x[i, j]) else x[i, j])
                                                  for i in range(3) for j, c in enumerate(cols)}
    assert [g[4] for g in got[3:5]] == [4, 4] and got[4][1] == 1


def test_logged_predictions_survive_a_kill_through_the_spool(tmp_path):
    """Once drain() returns, the rows are in the local spool (the logging thread writes them there itself),
    dictionary-encoded columns and all; a process killed then loses none: recovery commits each row once,
    the columnar batches (each with its own dictionaries) and a row-path request together."""
    wh = tmp_path / "wh"
    code = f"""
import os, numpy as np, lakeml
from lakeml.serving.predlog import PredictionLogger
from lakeml.serving.protocol import Batch
lake = lakeml.connect(warehouse={str(wh)!r}, commit_interval=3600)
pl = PredictionLogger(lake, model_name="m", model_version=1, model_uri="models:/m@a", service="svc")
cols = ["a", "b"]
for k in range(2):
    for i in range(5):
        x = np.array([[k, i], [i, -1.5]], dtype=float)
        pl.log(f"r{{k}}-{{i}}", Batch(cols, x.tolist()), [0, 1], 1.0, 200, inputs=x, outputs=np.array([0, 1]))
    pl.log(f"rows{{k}}", Batch(cols, [[1.0, 2.0]]), [1], 1.0, 200)
    pl.drain()
os._exit(0)  # killed: nothing was committed
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)),
                   timeout=120)
    with lakeml.connect(warehouse=wh) as lake:  # a read first recovers what dead processes left in the spool
        got = lake.sql("SELECT request_id, row_index, feature_names, feature_values, features, service, model_uri "
                       "FROM lakeml.predictions ORDER BY request_id, row_index").rows()
    assert len(got) == 22 and len({(g[0], g[1]) for g in got}) == 22
    assert got[0] == ("r0-0", 0, '["a", "b"]', [0.0, 0.0], None, "svc", "models:/m@a")
    assert got[-1][:5] == ("rows1", 0, None, None, '{"a": 1.0, "b": 2.0}')


def test_a_killed_log_process_loses_no_prediction(seeded, tmp_path):
    """kill -9 of the child that builds, spools and commits the rows: the batch it had not acknowledged is
    logged in-process, what it had spooled is recovered from its spool; every row lands once."""
    lake, clf, X, wh = seeded
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "lakeml", "models", "serve", "models:/iris@champion",
                             "--port", str(port), "--warehouse", str(wh), "--service", "kill-api",
                             "--commit-interval", "60"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rows = X.iloc[:2].to_dict(orient="records")
    try:
        wait_for(url + "/health", proc=proc)
        children = log_processes(proc.pid, workers=False)
        assert len(children) == 1
        with httpx.Client(timeout=30) as c:
            for i in range(60):
                if i == 40:
                    os.kill(children[0], signal.SIGKILL)
                r = c.post(url + "/invocations", json={"dataframe_records": rows}, headers={"X-Request-Id": f"k-{i}"})
                assert r.status_code == 200
                time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    assert code in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()[-3000:]  # uvicorn re-raises it
    got = lake.sql("SELECT count(*), count(DISTINCT (request_id, row_index)) FROM lakeml.predictions "
                   "WHERE service = 'kill-api'").rows()
    assert got == [(120, 120)], (tmp_path / "serve.log").read_text()[-3000:]
