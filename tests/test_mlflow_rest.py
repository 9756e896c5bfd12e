"""MLflow's REST API on a real ``lakeml server``, driven by the real ``mlflow`` client (issue 10).

One server for the module (a subprocess on loopback over a fresh warehouse). The flows: the fluent
API, MlflowClient search/paging/history/log_batch/delete_tag, sklearn autolog, register + alias +
``pyfunc.load_model("models:/name@alias")``, datasets; then the warehouse is read back with plain
pyiceberg and lakeml's SQL views, and runs logged through MLflow are compared with a native run.
Bad input gets MLflow's error shape, never a 500.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
httpx = pytest.importorskip("httpx")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.servers import LakemlServer

    base = tmp_path_factory.mktemp("mlflow_rest")
    srv = LakemlServer(base / "wh", base_dir=base)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = srv.url
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    mlflow.set_tracking_uri(srv.url)
    yield srv
    mlflow.set_tracking_uri(None) if hasattr(mlflow, "set_tracking_uri") else None
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old
    os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return MlflowClient(server.url)


@pytest.fixture(scope="module")
def fluent_run(server, tmp_path_factory):
    """A run logged with the fluent API (with a nested child), as a user's script would."""
    tmp = tmp_path_factory.mktemp("fluent")
    (tmp / "notes.txt").write_text("hello lake\n")
    mlflow.set_experiment("rest-fluent")
    with mlflow.start_run(run_name="fluent-parent") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"opt": "adam", "layers": 3})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8})
        mlflow.set_tag("team", "ml-core")
        mlflow.log_artifact(str(tmp / "notes.txt"), artifact_path="docs")
        mlflow.log_dict({"depth": 4, "name": "tree"}, "config/model.json")
        with mlflow.start_run(run_name="fluent-child", nested=True) as child:
            mlflow.log_metric("child_metric", 2.5)
    return run.info.run_id, child.info.run_id


# -- tracking -------------------------------------------------------------------------------------
def test_fluent_run_reads_back_through_mlflow(client, fluent_run):
    run_id, child_id = fluent_run
    r = client.get_run(run_id)
    assert r.info.run_name == "fluent-parent" and r.info.status == "FINISHED" and r.info.end_time >= r.info.start_time
    assert r.info.lifecycle_stage == "active"
    assert r.data.params == {"lr": "0.01", "opt": "adam", "layers": "3"}
    assert r.data.metrics == {"loss": pytest.approx(0.2), "acc": 0.9, "f1": 0.8}
    assert r.data.tags["team"] == "ml-core" and r.data.tags["mlflow.runName"] == "fluent-parent"
    assert r.info.artifact_uri == f"mlflow-artifacts:/{r.info.experiment_id}/{run_id}/artifacts"
    hist = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in hist] == [(s, pytest.approx(1.0 / (s + 1))) for s in range(5)]
    child = client.get_run(child_id)
    assert child.data.tags["mlflow.parentRunId"] == run_id and child.data.metrics == {"child_metric": 2.5}
    # artifacts: listing, and the bytes back through the proxy
    assert sorted(f.path for f in client.list_artifacts(run_id)) == ["config", "docs"]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "docs")] == [("docs/notes.txt", 11)]
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config/model.json") == {"depth": 4, "name": "tree"}
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/docs/notes.txt") == "hello lake\n"


def test_experiments_create_get_search(client):
    eid = client.create_experiment("rest-exp-a", tags={"owner": "ana"})
    assert client.get_experiment(eid).name == "rest-exp-a"
    by_name = client.get_experiment_by_name("rest-exp-a")
    assert by_name.experiment_id == eid and by_name.tags == {"owner": "ana"}
    assert by_name.artifact_location == f"mlflow-artifacts:/{eid}"
    assert client.get_experiment_by_name("no-such-experiment") is None
    with pytest.raises(MlflowException) as e:
        client.create_experiment("rest-exp-a")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    found = client.search_experiments(filter_string="name LIKE 'rest-exp-%'")
    assert [x.name for x in found] == ["rest-exp-a"]
    assert [x.name for x in client.search_experiments(filter_string="tags.owner = 'ana'")] == ["rest-exp-a"]
    # the Default experiment of MLflow (id "0") is lakeml's Default
    assert client.get_experiment("0").name == "Default"


def test_search_runs_filter_order_and_paging(client):
    from mlflow.entities import Metric, Param, RunTag

    eid = client.create_experiment("rest-search")
    expected = []
    for i in range(7):
        run = client.create_run(eid, run_name=f"s{i}")
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric("acc", i / 10, timestamp=1, step=0),
                                       Metric("acc", 0.1 * i + 0.05, timestamp=2, step=1)],
                         params=[Param("opt", "adam" if i % 2 == 0 else "sgd")],
                         tags=[RunTag("team", "ml-core" if i < 5 else "data")])
        client.set_terminated(rid, "FINISHED" if i != 3 else "FAILED")
        if i % 2 == 0 and i < 5 and 0.1 * i + 0.05 > 0.1:  # the filter sees each metric's latest value
            expected.append((0.1 * i + 0.05, rid))
    flt = "metrics.acc > 0.1 and params.opt = 'adam' and tags.team LIKE 'ml%' and attributes.status = 'FINISHED'"
    want = [rid for _, rid in sorted(expected, reverse=True)]
    got = client.search_runs([eid], flt, order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in got] == want
    # page through all 7 runs, 3 at a time, in run-name order
    seen, token = [], None
    while True:
        page = client.search_runs([eid], order_by=["attributes.run_name ASC"], max_results=3, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert seen == [f"s{i}" for i in range(7)]
    # MLflow's own spellings: tags.mlflow.runName, attributes.run_name, status
    assert [r.info.run_name for r in client.search_runs([eid], "tags.`mlflow.runName` = 's3'")] == ["s3"]
    assert [r.info.run_name for r in client.search_runs([eid], "attributes.status = 'FAILED'")] == ["s3"]
    # log-batch values round-trip in the history, and delete_tag removes a tag
    rid = want[0]
    assert [(m.step, m.value, m.timestamp) for m in client.get_metric_history(rid, "acc")] == [
        (0, pytest.approx(0.4), 1), (1, pytest.approx(0.45), 2)]
    client.set_tag(rid, "tmp", "x")
    assert client.get_run(rid).data.tags["tmp"] == "x"
    client.delete_tag(rid, "tmp")
    assert "tmp" not in client.get_run(rid).data.tags


@pytest.fixture(scope="module")
def autolog(server):
    """A run logged by ``mlflow.sklearn.autolog()`` plus a dataset input: (run id, model, X, dataset)."""
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression

    # MLflow infers pip requirements in a subprocess (~20 s here); after 1 s it falls back to its defaults
    old = os.environ.get("MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT")
    os.environ["MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT"] = "1"
    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    y = 2 * X.a - X.b + 1
    mlflow.set_experiment("rest-autolog")
    mlflow.sklearn.autolog(log_input_examples=False, log_model_signatures=True, silent=True)
    try:
        with mlflow.start_run(run_name="auto") as run:
            model = LinearRegression().fit(X, y)
            ds = mlflow.data.from_pandas(X.assign(y=y), source="file:///data/train.csv", name="train-set")
            mlflow.log_input(ds, context="training")
    finally:
        mlflow.sklearn.autolog(disable=True)
        if old is None:
            os.environ.pop("MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT", None)
        else:
            os.environ["MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT"] = old
    return run.info.run_id, model, X, ds


def test_autolog_register_alias_and_load(server, client, autolog):
    rid, model, X, ds = autolog
    r = client.get_run(rid)
    assert r.data.params["fit_intercept"] == "True" and r.data.metrics["training_score"] == pytest.approx(1.0)
    names = {d.dataset.name: d for d in r.inputs.dataset_inputs}
    assert names["train-set"].dataset.digest == ds.digest
    assert {t.key: t.value for t in names["train-set"].tags} == {"mlflow.data.context": "training"}
    assert "model" in {f.path for f in client.list_artifacts(rid)}
    mv = mlflow.register_model(f"runs:/{rid}/model", "rest-clf")
    assert mv.version == "1" and mv.run_id == rid
    client.set_registered_model_alias("rest-clf", "champion", mv.version)
    assert client.get_model_version_by_alias("rest-clf", "champion").version == "1"
    loaded = mlflow.pyfunc.load_model("models:/rest-clf@champion")
    assert list(loaded.predict(X.head(5))) == pytest.approx(list(model.predict(X.head(5))))
    # the registry is lakeml's: searchable, and the alias can be deleted
    assert [m.name for m in client.search_registered_models("name = 'rest-clf'")] == ["rest-clf"]
    assert [v.version for v in client.search_model_versions("name = 'rest-clf'")] == ["1"]
    assert client.get_model_version_download_uri("rest-clf", "1") == \
        f"mlflow-artifacts:/{r.info.experiment_id}/{rid}/artifacts/model"
    client.delete_registered_model_alias("rest-clf", "champion")
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias("rest-clf", "champion")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.set_registered_model_alias("rest-clf", "champion", "1")


# -- bad input --------------------------------------------------------------------------------------
def _err(resp) -> tuple[int, str]:
    body = resp.json()
    assert set(body) >= {"error_code", "message"} and body["message"], body
    return resp.status_code, body["error_code"]


def test_resent_log_batch_body_is_stored_once(server, client):
    """A log-batch body re-sent byte for byte (a retry after a lost acknowledgement) is stored once; a
    body with bare NaN tokens (Python's json.dumps, not strict JSON) is still read."""
    eid = client.create_experiment("rest-resend")
    rid = client.create_run(eid).info.run_id
    points = [{"key": "loss", "value": 1.0 / (i + 1), "timestamp": 1_700_000_000_000 + i, "step": i}
              for i in range(50)]
    body = json.dumps({"run_id": rid, "metrics": points}).encode()
    nan_body = json.dumps({"run_id": rid, "metrics": [{"key": "gap", "value": float("nan"), "timestamp": 1,
                                                        "step": 0}]}).encode()
    assert b"NaN" in nan_body
    with httpx.Client(base_url=server.url, headers={"Content-Type": "application/json"}) as h:
        for b in (body, body, nan_body):
            r = h.post("/api/2.0/mlflow/runs/log-batch", content=b)
            assert r.status_code == 200, r.text
    hist = client.get_metric_history(rid, "loss")
    assert sorted(m.step for m in hist) == list(range(50))
    gap = client.get_metric_history(rid, "gap")
    assert len(gap) == 1 and gap[0].value != gap[0].value  # NaN


def test_bad_inputs_get_mlflow_errors(server, client, fluent_run):
    run_id, _ = fluent_run
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "lr", 0.5)  # params are write-once
    assert e.value.error_code == "INVALID_PARAMETER_VALUE" and "lr" in e.value.message
    with pytest.raises(MlflowException) as e:
        client.get_run("0" * 32)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.search_runs(["0"], "metrics.acc >>> 1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    # an unknown run id answers 404 once the replicas' grace has passed (app.unknown_run_grace)
    with httpx.Client(base_url=server.url, timeout=60) as h:
        assert _err(h.get("/api/2.0/mlflow/no/such/endpoint")) == (404, "ENDPOINT_NOT_FOUND")
        assert _err(h.post("/api/2.0/mlflow/traces/search", json={})) == (404, "ENDPOINT_NOT_FOUND")
        assert _err(h.get("/api/3.0/mlflow/anything")) == (404, "ENDPOINT_NOT_FOUND")
        assert _err(h.post("/api/2.0/mlflow/runs/log-batch", content=b"{not json")) == (400, "INVALID_PARAMETER_VALUE")
        assert _err(h.post("/api/2.0/mlflow/runs/log-batch", json=[1])) == (400, "INVALID_PARAMETER_VALUE")
        assert _err(h.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "m",
                                                                                                  "value": "x"}]})) \
            == (400, "INVALID_PARAMETER_VALUE")
        assert _err(h.post("/api/2.0/mlflow/runs/log-metric", json={"run_id": "0" * 32, "key": "m", "value": 1,
                                                                     "timestamp": 1})) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert _err(h.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "nope"})) == \
            (404, "RESOURCE_DOES_NOT_EXIST")
        assert _err(h.post("/ajax-api/2.0/mlflow/runs/search", json={"max_results": 0})) == \
            (400, "INVALID_PARAMETER_VALUE")
        assert _err(h.post("/api/2.0/mlflow/runs/search", json={"page_token": "garbage"})) == \
            (400, "INVALID_PARAMETER_VALUE")
        # '..' in an artifact path: refused however it is spelled (raw, not normalised by the client)
        eid = client.get_run(run_id).info.experiment_id
        for bad in (f"{eid}/{run_id}/artifacts/../../x.txt", f"{eid}/{run_id}/artifacts/%2E%2E/x.txt"):
            status, code = _raw(server.url, "PUT", f"/api/2.0/mlflow-artifacts/artifacts/{bad}", b"boom")
            assert status == 400 and code == "INVALID_PARAMETER_VALUE", bad
        status, code = _raw(server.url, "GET", "/api/2.0/mlflow-artifacts/artifacts?path="
                            + urllib.parse.quote(f"{eid}/../.."), b"")
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE")


def _raw(url: str, method: str, path: str, body: bytes) -> tuple[int, str]:
    """Send a request exactly as written (no path normalisation); returns status and error_code."""
    host, port = urllib.parse.urlparse(url).hostname, urllib.parse.urlparse(url).port
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    try:
        code = json.loads(payload).get("error_code", "")
    except ValueError:
        code = ""
    return status, code


def test_interrupted_upload_leaves_nothing(server, client, fluent_run):
    run_id, _ = fluent_run
    eid = client.get_run(run_id).info.experiment_id
    host, port = urllib.parse.urlparse(server.url).hostname, urllib.parse.urlparse(server.url).port
    path = f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{run_id}/artifacts/partial/big.bin"
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000\r\n\r\n".encode() + b"x" * 4096)
    # the server has seen the disconnect once a later request on a fresh connection is answered
    assert "partial" not in {f.path for f in client.list_artifacts(run_id)}
    with httpx.Client(base_url=server.url) as h:
        assert h.get(path).status_code == 404
        ok = h.put(path, content=b"y" * 1000)
        assert ok.status_code == 200, ok.text
        assert h.get(path).content == b"y" * 1000
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "partial")] == [("partial/big.bin", 1000)]


# -- the tables: MLflow runs look like native runs, and the reverse ---------------------------------
def test_tables_read_back_with_pyiceberg_and_native_runs_match(server, client, fluent_run, autolog):
    import lakeml
    from pyiceberg.catalog.sql import SqlCatalog

    run_id, child_id = fluent_run
    server.stop()  # SIGTERM: the server commits what it holds
    wh = Path(server.warehouse)
    cat = SqlCatalog("lakeml", uri=f"sqlite:///{wh / 'catalog.db'}", warehouse=wh.as_uri())
    runs = cat.load_table("lakeml.runs").scan().to_arrow().to_pylist()
    mine = sorted((r for r in runs if r["run_id"] == run_id), key=lambda r: (r["event_time"], r["event_seq"]))
    assert [r["status"] for r in mine] == ["RUNNING", "FINISHED"]
    assert mine[-1]["run_name"] == "fluent-parent" and mine[-1]["user"]
    child = [r for r in runs if r["run_id"] == child_id][-1]
    assert child["parent_run_id"] == run_id
    params = {(r["key"], r["value"]) for r in cat.load_table("lakeml.params").scan().to_arrow().to_pylist()
              if r["run_id"] == run_id}
    assert params == {("lr", "0.01"), ("opt", "adam"), ("layers", "3")}
    points = [r for r in cat.load_table("lakeml.metrics").scan().to_arrow().to_pylist() if r["run_id"] == run_id]
    assert sorted((r["key"], r["step"]) for r in points) == sorted(
        [("loss", s) for s in range(5)] + [("acc", 0), ("f1", 0)])
    tags = {r["key"] for r in cat.load_table("lakeml.tags").scan().to_arrow().to_pylist() if r["run_id"] == run_id}
    assert "team" in tags and not {"mlflow.runName", "mlflow.parentRunId"} & tags  # those are run columns
    arts = {r["path"] for r in cat.load_table("lakeml.artifacts").scan().to_arrow().to_pylist()
            if r["run_id"] == run_id}
    assert {"docs/notes.txt", "config/model.json"} <= arts

    # a native lakeml run in the same experiment: the same columns are filled in the views
    lake = lakeml.connect(warehouse=str(wh))
    try:
        native = lake.create_run("rest-fluent", run_name="native")
        lake.log_param(native.run_id, "lr", 0.01)
        lake.log_metric(native.run_id, "loss", 0.5, step=0)
        lake.set_tag(native.run_id, "team", "ml-core")
        lake.set_terminated(native.run_id, wait=True)
        cols = lake.sql("SELECT * FROM lakeml.runs_latest WHERE run_id IN ($1, $2)", params=[run_id, native.run_id])
        rows = {r["run_id"]: r for r in cols.to_dicts()}
        # git_commit: lakeml takes the working directory's commit, MLflow the entry point's, if any; the
        # run keeps whatever the MLflow client declared (its mlflow.source.git.commit tag)
        filled = {rid: {k for k, val in r.items() if val is not None and k not in ("error", "git_commit")}
                  for rid, r in rows.items()}
        assert filled[run_id] == filled[native.run_id]
        declared = {t["key"]: t["value"] for t in cat.load_table("lakeml.tags").scan().to_arrow().to_pylist()
                    if t["run_id"] == run_id}.get("mlflow.source.git.commit")
        assert rows[run_id]["git_commit"] == declared
        # the client's entry point (this pytest process, like the native run's), not the server's
        assert rows[run_id]["source"] == rows[native.run_id]["source"] and "lakeml/server" not in rows[run_id]["source"]
        assert rows[run_id]["experiment_name"] == rows[native.run_id]["experiment_name"] == "rest-fluent"
        views = lake.sql("SELECT run_id, key, value FROM lakeml.params WHERE run_id IN ($1, $2) AND key = 'lr'",
                         params=[run_id, native.run_id])
        assert sorted(views["value"].to_list()) == ["0.01", "0.01"]
        # lakeml loads the model MLflow logged, from the same files
        assert lake.load_model(f"runs:/{autolog[0]}/model") is not None
    finally:
        lake.close()
    server.restart()
    # the native run, seen by MLflow
    r = client.get_run(native.run_id)
    assert r.info.run_name == "native" and r.info.status == "FINISHED"
    assert r.data.params == {"lr": "0.01"} and r.data.metrics == {"loss": 0.5} and r.data.tags["team"] == "ml-core"
    found = client.search_runs([r.info.experiment_id], "attributes.run_name = 'native'")
    assert [x.info.run_id for x in found] == [native.run_id]


def test_tokens_and_scopes_on_mlflow_routes(tmp_path, monkeypatch):
    """With tokens: MLflow clients send MLFLOW_TRACKING_TOKEN; a read token cannot log, a write token logs
    as its name; no token is a 401 in MLflow's shape."""
    import lakeml
    from lakeml.server.auth import TokenStore
    from tests.servers import LakemlServer

    lake = lakeml.connect(warehouse=str(tmp_path / "wh"))
    try:
        _, reader = TokenStore(lake.store).create("reader", "read")
        _, writer = TokenStore(lake.store).create("ci-bot", "write")
        lake.flush()
    finally:
        lake.close()
    srv = LakemlServer(tmp_path / "wh", base_dir=tmp_path)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", writer)
        w = MlflowClient(srv.url)
        eid = w.create_experiment("scoped")
        rid = w.create_run(eid).info.run_id
        w.log_metric(rid, "m", 1.0)
        assert w.get_run(rid).info.user_id == "ci-bot"
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", reader)
        r = MlflowClient(srv.url)
        assert r.get_run(rid).data.metrics == {"m": 1.0}
        with pytest.raises(MlflowException) as e:
            r.log_metric(rid, "m", 2.0)
        assert e.value.error_code == "PERMISSION_DENIED"
        with httpx.Client(base_url=srv.url) as h:
            resp = h.get("/api/2.0/mlflow/runs/get", params={"run_id": rid})
            assert resp.status_code == 401 and resp.json()["error_code"] == "UNAUTHENTICATED"
    finally:
        srv.stop()


# -- fuzz (in-process app over a real lake) -----------------------------------------------------------
_JSON = None


def _json_values():
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20)
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                                                           max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    import lakeml
    from fastapi.testclient import TestClient

    from lakeml.server.app import create_app
    from lakeml.server.settings import ServerSettings

    lake = lakeml.connect(warehouse=str(tmp_path_factory.mktemp("fuzz") / "wh"))
    run = lake.create_run("fuzz")
    with TestClient(create_app(lake, ServerSettings())) as tc:
        yield tc, run.run_id
    lake.close()


def test_fuzzed_json_bodies_never_500(fuzz_app):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    tc, run_id = fuzz_app
    paths = ["runs/log-batch", "runs/create", "runs/search", "runs/update", "runs/set-tag", "runs/log-metric",
             "runs/log-parameter", "runs/log-inputs", "experiments/create", "experiments/search",
             "registered-models/create", "model-versions/create", "logged-models"]
    fields = ["run_id", "experiment_id", "metrics", "params", "tags", "filter", "order_by", "max_results",
              "page_token", "name", "key", "value", "step", "timestamp", "status", "datasets", "source"]
    body = st.dictionaries(st.sampled_from(fields), _json_values(), max_size=5)
    body = st.one_of(body, body.map(lambda d: {**d, "run_id": run_id}), _json_values())

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(paths), payload=body)
    def check(path, payload):
        r = tc.post(f"/api/2.0/mlflow/{path}", content=json.dumps(payload, allow_nan=True))
        assert r.status_code < 500, (path, payload, r.text)
        if r.status_code >= 400:
            assert set(r.json()) == {"error_code", "message"}, r.text

    check()
