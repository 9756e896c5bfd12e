"""lakeml's own ``/api/v1`` against a real ``lakeml server`` subprocess on loopback: every route's happy
path, and every kind of bad input answered with a 4xx JSON error naming the field."""

from __future__ import annotations

import json
import socket
import urllib.parse
import uuid

import httpx
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import LakemlServer

ARROW = "application/vnd.apache.arrow.stream"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("api-v1")
    srv = LakemlServer(base / "wh", base_dir=base)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def new_run(http, experiment="api", **kw) -> str:
    r = http.post("/api/v1/runs", json={"experiment": experiment, **kw})
    assert r.status_code == 201, r.text
    return r.json()["run_id"]


def error(r, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"]
    if field is not None:
        assert err.get("field") in (field, f"query.{field}", f"path.{field}"), err
    return err


def history(http, run_id, key=None) -> list[dict]:
    r = http.get(f"/api/v1/runs/{run_id}/metrics/history", params={"key": key} if key else None)
    assert r.status_code == 200, r.text
    return r.json()["metrics"]


# -- experiments ---------------------------------------------------------------------------------
def test_experiments_create_list_get(http):
    r = http.post("/api/v1/experiments", json={"name": "exp-a", "tags": {"team": "ml"}})
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["name"] == "exp-a" and exp["tags"] == {"team": "ml"}
    assert {e["name"] for e in http.get("/api/v1/experiments").json()["experiments"]} >= {"exp-a"}
    assert http.get(f"/api/v1/experiments/{exp['experiment_id']}").json()["name"] == "exp-a"
    assert http.get("/api/v1/experiments/exp-a").json()["experiment_id"] == exp["experiment_id"]
    error(http.post("/api/v1/experiments", json={"name": "exp-a"}), 409)
    error(http.get("/api/v1/experiments/nope-nope"), 404)
    error(http.post("/api/v1/experiments", json={"tags": {}}), 400, "name")


# -- runs and logging ----------------------------------------------------------------------------
def test_run_lifecycle_and_json_batch(http):
    rid = new_run(http, run_name="first", tags={"a": "1"})
    r = http.post(f"/api/v1/runs/{rid}/batch", json={
        "metrics": [{"key": "loss", "value": 0.5, "step": 1}, {"key": "loss", "value": "NaN", "step": 2}],
        "params": [{"key": "lr", "value": 0.1}], "tags": [{"key": "b", "value": "2"}]})
    assert r.status_code == 200 and r.json() == {"accepted": 4, "duplicate": False}, r.text
    run = http.get(f"/api/v1/runs/{rid}").json()
    assert run["run_name"] == "first" and run["status"] == "RUNNING"
    assert run["params"] == {"lr": "0.1"} and run["tags"] == {"a": "1", "b": "2"}
    pts = history(http, rid, "loss")
    assert [(p["step"], p["value"]) for p in pts] == [(1, 0.5), (2, "nan")]
    assert http.delete(f"/api/v1/runs/{rid}/tags/b").status_code == 200
    r = http.post(f"/api/v1/runs/{rid}/terminate", json={"status": "FAILED", "error": "boom"})
    assert r.status_code == 200, r.text
    run = http.get(f"/api/v1/runs/{rid}").json()
    assert run["status"] == "FAILED" and run["error"] == "boom" and "b" not in run["tags"]
    assert http.patch(f"/api/v1/runs/{rid}", json={"status": "FINISHED"}).status_code == 200
    assert http.get(f"/api/v1/runs/{rid}").json()["status"] == "FINISHED"


def test_client_chosen_run_id_and_parent(http):
    rid = uuid.uuid4().hex
    assert new_run(http, run_id=rid) == rid
    child = new_run(http, parent_run_id=rid)
    assert http.get(f"/api/v1/runs/{child}").json()["parent_run_id"] == rid
    error(http.post("/api/v1/runs", json={"parent_run_id": uuid.uuid4().hex}), 404)
    error(http.post("/api/v1/runs", json={"run_id": "not-hex"}), 400, "run_id")


def test_same_batch_id_is_stored_once(http):
    rid = new_run(http)
    body = {"metrics": [{"key": "m", "value": float(i), "step": i} for i in range(5)]}
    key = uuid.uuid4().hex
    first = http.post(f"/api/v1/runs/{rid}/batch", json=body, headers={"X-Lakeml-Batch-Id": key})
    again = http.post(f"/api/v1/runs/{rid}/batch", json=body, headers={"X-Lakeml-Batch-Id": key,
                                                                       "X-Lakeml-Retry": "1"})
    assert first.json() == {"accepted": 5, "duplicate": False}
    assert again.json() == {"accepted": 0, "duplicate": True} and again.headers["X-Lakeml-Duplicate"] == "1"
    assert len(history(http, rid, "m")) == 5
    error(http.post(f"/api/v1/runs/{rid}/batch", json=body, headers={"X-Lakeml-Batch-Id": "bad key!"}), 400,
          "X-Lakeml-Batch-Id")
    error(http.post(f"/api/v1/runs/{rid}/batch", json=body, headers={"X-Lakeml-Batch-Id": uuid.uuid4().hex,
                                                                     "X-Lakeml-Batch-Time": "yesterday"}), 400,
          "X-Lakeml-Batch-Time")


def test_arrow_batches_one_and_many_runs(http):
    a, b = new_run(http), new_run(http)
    t = pa.table({"key": ["acc"] * 3, "value": [0.1, 0.2, 0.3], "step": [1, 2, 3],
                  "timestamp": [1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000]})
    r = http.post(f"/api/v1/runs/{a}/batch", content=ipc(t), headers={"Content-Type": ARROW})
    assert r.json() == {"accepted": 3, "duplicate": False}, r.text
    many = pa.table({"run_id": [a, b, b], "key": ["x", "x", "y"], "value": [1.0, 2.0, 3.0]})
    r = http.post("/api/v1/batch", content=ipc(many), headers={"Content-Type": ARROW})
    assert r.json() == {"accepted": 3, "duplicate": False}, r.text
    pts = history(http, a, "acc")
    assert [p["value"] for p in pts] == [0.1, 0.2, 0.3] and pts[0]["timestamp"].startswith("2023-11-14T22:13:20")
    assert {(p["key"], p["value"]) for p in history(http, b)} == {("x", 2.0), ("y", 3.0)}
    r = http.get(f"/api/v1/runs/{b}/metrics/history", params={"format": "arrow"})
    assert r.headers["content-type"] == ARROW
    assert pa.ipc.open_stream(r.content).read_all().num_rows == 2


def test_bad_arrow_bodies(http):
    rid = new_run(http)
    hdr = {"Content-Type": ARROW}
    error(http.post("/api/v1/batch", content=b"not arrow at all", headers=hdr), 400, "body")
    error(http.post(f"/api/v1/runs/{rid}/batch", content=ipc(pa.table({"value": [1.0]})), headers=hdr), 400, "key")
    error(http.post("/api/v1/batch", content=ipc(pa.table({"key": ["k"], "value": [1.0]})), headers=hdr), 400,
          "run_id")
    error(http.post("/api/v1/batch", content=ipc(pa.table({"run_id": [rid], "key": ["k"], "value": ["x"]})),
                    headers=hdr), 400, "value")
    error(http.post("/api/v1/batch", content=ipc(pa.table({"run_id": [rid], "key": ["k"], "value": [1.0],
                                                            "color": ["red"]})), headers=hdr), 400, "color")
    error(http.post("/api/v1/batch", content=ipc(pa.table({"run_id": [rid], "key": ["bad key!"], "value": [1.0]})),
                    headers=hdr), 400, "key")
    other = new_run(http)
    error(http.post(f"/api/v1/runs/{rid}/batch", content=ipc(pa.table({"run_id": [other], "key": ["k"],
                                                                        "value": [1.0]})), headers=hdr), 400, "run_id")
    error(http.post("/api/v1/batch", content=ipc(pa.table({"run_id": [uuid.uuid4().hex], "key": ["k"],
                                                            "value": [1.0]})), headers=hdr), 404)
    error(http.post("/api/v1/batch", json={"metrics": []}), 415, "Content-Type")
    assert history(http, rid) == []  # nothing of the refused bodies was stored


def test_bad_json_and_unknown_runs(http):
    rid = new_run(http)
    error(http.post(f"/api/v1/runs/{rid}/batch", content=b"{nope", headers={"Content-Type": "application/json"}),
          400, "body")
    error(http.post(f"/api/v1/runs/{rid}/batch", json={"metrics": [{"key": "k"}]}), 400, "metrics.0.value")
    error(http.post(f"/api/v1/runs/{rid}/batch", json={"metrics": [{"key": "k", "value": "abc"}]}), 400,
          "metrics.0.value")
    error(http.post(f"/api/v1/runs/{rid}/batch", json={"metrics": [{"key": "k", "value": 1, "step": "x"}]}),
          400, "metrics.0.step")
    unknown = uuid.uuid4().hex
    error(http.get(f"/api/v1/runs/{unknown}"), 404)
    error(http.post(f"/api/v1/runs/{unknown}/batch", json={"params": [{"key": "a", "value": 1}]}), 404)
    error(http.get(f"/api/v1/runs/{unknown}/metrics/history"), 404)
    error(http.get("/api/v1/runs/xyz"), 400, "run_id")
    error(http.post(f"/api/v1/runs/{rid}/terminate", json={"status": "DONE"}), 400, "status")


def test_param_change_is_a_conflict(http):
    rid = new_run(http)
    assert http.post(f"/api/v1/runs/{rid}/batch", json={"params": [{"key": "lr", "value": "0.1"}]}).status_code == 200
    assert http.post(f"/api/v1/runs/{rid}/batch", json={"params": [{"key": "lr", "value": "0.1"}]}).status_code == 200
    err = error(http.post(f"/api/v1/runs/{rid}/batch", json={"params": [{"key": "lr", "value": "0.2"}],
                                                             "metrics": [{"key": "m", "value": 1}]}), 409)
    assert "write-once" in err["message"]
    assert history(http, rid) == []  # the whole batch was refused


# -- search ----------------------------------------------------------------------------------------
def test_search_filter_order_and_pages(http):
    exp = f"search-{uuid.uuid4().hex[:6]}"
    ids = []
    for i in range(5):
        rid = new_run(http, experiment=exp, run_name=f"r{i}")
        http.post(f"/api/v1/runs/{rid}/batch", json={"metrics": [{"key": "loss", "value": i / 10}],
                                                     "params": [{"key": "i", "value": i}]})
        ids.append(rid)
    r = http.get("/api/v1/runs", params={"experiment": exp, "filter": "metrics.loss < 0.35",
                                         "order_by": "metrics.loss DESC", "max_results": 2})
    page = r.json()
    assert [x["run_name"] for x in page["runs"]] == ["r3", "r2"] and page["next_page_token"]
    page2 = http.post("/api/v1/runs/search", json={"experiment_names": [exp], "filter": "metrics.loss < 0.35",
                                                   "order_by": ["metrics.loss DESC"], "max_results": 2,
                                                   "page_token": page["next_page_token"]}).json()
    assert [x["run_name"] for x in page2["runs"]] == ["r1", "r0"] and page2["next_page_token"] is None
    r = http.post("/api/v1/runs/search", json={"experiment_names": [exp], "format": "arrow"})
    assert pa.ipc.open_stream(r.content).read_all().num_rows == 5
    err = error(http.get("/api/v1/runs", params={"filter": "metrics.loss <<< 1"}), 400, "filter")
    assert "filter" in err["message"]
    error(http.get("/api/v1/runs", params={"page_token": "garbage"}), 400, "page_token")
    error(http.get("/api/v1/runs", params={"max_results": 0}), 400, "max_results")


# -- inputs ----------------------------------------------------------------------------------------
def test_inputs(http):
    rid = new_run(http)
    assert http.post("/api/v1/server/flush").status_code == 200  # lakeml.experiments exists once committed
    r = http.post(f"/api/v1/runs/{rid}/inputs", json={"table": "lakeml.experiments", "role": "train"})
    assert r.status_code == 201, r.text
    assert r.json()["table"].endswith("experiments") and r.json()["snapshot_id"]
    assert [i["role"] for i in http.get(f"/api/v1/runs/{rid}/inputs").json()["inputs"]] == ["train"]
    error(http.post(f"/api/v1/runs/{rid}/inputs", json={"table": "no_such.table_here"}), 404)


# -- artifacts -------------------------------------------------------------------------------------
def test_artifacts_roundtrip(http):
    rid = new_run(http)
    data = bytes(range(256)) * 4096  # 1 MiB
    r = http.put(f"/api/v1/artifacts/{rid}/reports/data.bin", content=data)
    assert r.status_code == 201 and r.json()["path"] == "reports/data.bin", r.text
    assert http.get(f"/api/v1/artifacts/{rid}/reports/data.bin").content == data
    files = http.get(f"/api/v1/artifacts/{rid}", params={"path": "reports"}).json()["files"]
    assert files == [{"path": "reports/data.bin", "size": len(data), "sha256": None, "is_dir": False}]
    error(http.get(f"/api/v1/artifacts/{rid}/reports"), 400, "path")
    error(http.get(f"/api/v1/artifacts/{rid}", params={"path": "reports/data.bin"}), 400, "path")
    error(http.get(f"/api/v1/artifacts/{rid}/nothing.txt"), 404)


def test_artifact_bad_paths(http):
    rid = new_run(http)
    error(http.put(f"/api/v1/artifacts/{rid}/a/%2e%2e/%2e%2e/escape.txt", content=b"x"), 400, "path")
    error(http.put(f"/api/v1/artifacts/{rid}/%2e%2e", content=b"x"), 400, "path")
    error(http.get(f"/api/v1/artifacts/{rid}", params={"path": "../x"}), 400, "path")
    error(http.put(f"/api/v1/artifacts/{uuid.uuid4().hex}/a.txt", content=b"x"), 404)


def test_upload_cut_off_leaves_nothing(server, http):
    rid = new_run(http)
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall((f"PUT /api/v1/artifacts/{rid}/big.bin HTTP/1.1\r\nHost: {host}\r\n"
                   f"Content-Length: {10 * 1024 * 1024}\r\nContent-Type: application/octet-stream\r\n\r\n").encode())
        s.sendall(b"x" * 300_000)
    # the server saw the disconnect; a later complete upload works, the cut one never appears
    assert http.put(f"/api/v1/artifacts/{rid}/small.txt", content=b"ok").status_code == 201
    files = http.get(f"/api/v1/artifacts/{rid}").json()["files"]
    assert [f["path"] for f in files] == ["small.txt"]
    error(http.get(f"/api/v1/artifacts/{rid}/big.bin"), 404)


# -- registry --------------------------------------------------------------------------------------
def double(x):
    return x * 2


def test_registry_flow(server, http):
    import lakeml

    lake = lakeml.connect(warehouse=str(server.warehouse))  # a model logged by a training job
    run = lake.create_run("models")
    lake.log_model(run.run_id, double, "model", flavor="python")
    lake.log_metric(run.run_id, "acc", 0.9)
    lake.set_terminated(run.run_id, wait=True)
    lake.close()
    name = f"m{uuid.uuid4().hex[:6]}"
    assert http.post("/api/v1/models", json={"name": name, "description": "demo"}).status_code == 201
    error(http.post("/api/v1/models", json={"name": "bad name/!"}), 400)
    r = http.post(f"/api/v1/models/{name}/versions", json={"run_id": run.run_id})
    assert r.status_code == 201 and r.json()["version"] == 1, r.text
    assert http.put(f"/api/v1/models/{name}/aliases/champion", json={"version": 1}).status_code == 200
    assert http.get(f"/api/v1/models/{name}/aliases/champion").json()["version"] == 1
    assert http.get(f"/api/v1/models/{name}/versions/latest").json()["aliases"] == ["champion"]
    assert [m["name"] for m in http.get("/api/v1/models", params={"q": name}).json()["models"]] == [name]
    r = http.put(f"/api/v1/models/{name}/gates", json={"min_metrics": {"acc": 0.95}, "aliases": ["prod"],
                                                        "environments": ["prod"]})
    assert r.status_code == 200, r.text
    check = http.post(f"/api/v1/models/{name}/versions/1/gates/check", json={"alias": "prod"}).json()
    assert check["passes"] is False and "acc" in check["failures"][0]
    err = error(http.put(f"/api/v1/models/{name}/aliases/prod", json={"version": 1}), 409)
    assert "acc" in err["message"]
    r = http.post(f"/api/v1/models/{name}/deployments", json={"version": 1, "environment": "dev", "service": "api"})
    assert r.status_code == 201, r.text
    deps = http.get("/api/v1/deployments", params={"model": name}).json()["deployments"]
    assert [(d["environment"], d["version"]) for d in deps] == [("dev", 1)]
    assert http.delete(f"/api/v1/models/{name}/aliases/champion").status_code == 200
    error(http.get(f"/api/v1/models/{name}/aliases/champion"), 404)
    error(http.get(f"/api/v1/models/{name}/versions/7"), 404)
    error(http.put(f"/api/v1/models/{name}/aliases/x", json={"version": "one"}), 400, "version")
    kinds = [e["event_type"] for e in http.get("/api/v1/registry/events", params={"name": name}).json()["events"]]
    assert kinds[:3] == ["model_created", "version_registered", "alias_set"]


def test_openapi_documents_the_routes(http):
    spec = http.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/runs", "/api/v1/runs/{run_id}/batch", "/api/v1/batch", "/api/v1/experiments",
                 "/api/v1/artifacts/{run_id}/{path}", "/api/v1/models/{name}/versions"):
        assert path in spec["paths"], path
    body = spec["paths"]["/api/v1/runs/{run_id}/batch"]["post"]["requestBody"]["content"]
    assert set(body) >= {"application/json", ARROW}
    assert http.get("/docs").status_code == 200
    json.dumps(spec)


# -- scopes and fuzzing ----------------------------------------------------------------------------
def test_every_write_route_needs_write_or_admin():
    """Reads need 'read'; anything that changes the lake needs 'write' (gates: 'admin')."""
    from lakeml.server.api_v1 import artifacts, experiments, logging, registry, runs, search

    routes = [r for m in (artifacts, experiments, logging, registry, runs, search) for r in m.router.routes]
    seen = 0
    for route in routes:
        needs = {d.call.__name__ for d in route.dependant.dependencies if d.call.__name__.startswith("require_")}
        assert len(needs) == 1, (route.path, needs)
        if route.methods & {"POST", "PUT", "PATCH", "DELETE"} and not route.path.endswith(("/search", "/check")):
            assert needs & {"require_write", "require_admin"}, route.path
            seen += 1
        else:
            assert needs == {"require_read"}, route.path
    assert seen >= 15
    gates = [r for r in routes if r.path.endswith("/gates") and "PUT" in r.methods]
    assert {d.call.__name__ for d in gates[0].dependant.dependencies} == {"require_admin"}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                     max_size=4), max_leaves=12)
batch_like = st.fixed_dictionaries({}, optional={
    "metrics": st.lists(st.fixed_dictionaries({}, optional={"key": json_values, "value": json_values,
                                                           "step": json_values, "timestamp": json_values}),
                        max_size=3) | json_values,
    "params": st.lists(st.fixed_dictionaries({}, optional={"key": json_values, "value": json_values}),
                       max_size=3) | json_values,
    "tags": json_values,
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=batch_like | json_values)
def test_fuzzed_json_batches_never_get_a_500(http, body):
    rid = _fuzz_run(http)
    r = http.post(f"/api/v1/runs/{rid}/batch", content=json.dumps(body, allow_nan=True),
                  headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 400, 409), r.text
    if r.status_code != 200:
        assert r.json()["error"]["message"]


_FUZZ: dict[str, str] = {}


def _fuzz_run(http) -> str:
    if "run" not in _FUZZ:
        _FUZZ["run"] = new_run(http, experiment="fuzz")
    return _FUZZ["run"]
