"""The ``lakeml://`` MLflow plugin with the real ``mlflow`` package and no server: MLflow's fluent API,
``MlflowClient``, sklearn autologging, the model registry and ``models:/name@alias`` loading write into
the lake's Iceberg tables, which plain pyiceberg and lakeml's SQL views read back; native lakeml runs
read correctly through MLflow."""

from __future__ import annotations

import hashlib
import json

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from lakeml.errors import ConfigError  # noqa: E402
from lakeml.mlflow_plugin import close, lake_for  # noqa: E402
from lakeml.mlflow_plugin.lakes import LakeUri  # noqa: E402


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """MLflow pointed at ``lakeml://<tmp>/wh`` for the module; yields (uri, warehouse path)."""
    wh = tmp_path_factory.mktemp("plugin") / "wh"
    uri = f"lakeml://{wh}"
    old_tracking = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(None)  # the registry URI defaults to the tracking URI
    try:
        yield uri, wh
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.sklearn.autolog(disable=True)
        mlflow.set_tracking_uri(old_tracking)
        close(uri)


def _pyiceberg_rows(wh, table: str, run_id: str) -> list[dict]:
    """Rows of ``lakeml.<table>`` for one run, read with pyiceberg alone (the lake's own SQLite catalog)."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import EqualTo

    cat = SqlCatalog("lakeml", uri=f"sqlite:///{wh}/catalog.db", warehouse=wh.as_uri())
    return cat.load_table(f"lakeml.{table}").scan(row_filter=EqualTo("run_id", run_id)).to_arrow().to_pylist()


def test_uris_name_a_warehouse_folder_or_a_catalog():
    assert LakeUri.parse("lakeml:///data/wh") == LakeUri(warehouse="/data/wh")
    assert LakeUri.parse("lakeml:///data/wh?namespace=team") == LakeUri(warehouse="/data/wh", namespace="team")
    assert LakeUri.parse("lakeml://prod") == LakeUri(catalog="prod")
    for bad in ("lakeml://", "lakeml://prod/data", "lakeml:///data?colour=red", "sqlite:///x.db"):
        with pytest.raises(ConfigError):
            LakeUri.parse(bad)


def test_fluent_run_is_a_native_run_in_the_tables(plugin, tmp_path):
    uri, wh = plugin
    assert mlflow.get_registry_uri() == uri
    notes = tmp_path / "notes.txt"
    notes.write_text("hello lake\n")
    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="fluent-1") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "opt": "adam"})
        for step, loss in enumerate([0.9, 0.5, 0.25]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metrics({"acc": 0.8, "f1": 0.7})
        mlflow.set_tag("team", "lake")
        mlflow.log_artifact(str(notes))
        mlflow.log_dict({"a": 1}, "cfg/config.json")
        mlflow.log_metric("async", 1.0, synchronous=False).wait()  # MLflow's async queue calls log_batch
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_param("fold", 1)
    rid = run.info.run_id
    assert lake_for(uri).get_run(child.info.run_id).parent_run_id == rid  # a column, as for native nested runs
    assert mlflow.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == rid
    assert run.info.artifact_uri == lake_for(uri).artifact_uri(rid)  # where lakeml keeps the run's files

    got = mlflow.get_run(rid)
    assert got.info.status == "FINISHED" and got.info.run_name == "fluent-1"
    assert got.data.params == {"lr": "0.1", "depth": "3", "opt": "adam"}
    assert got.data.metrics == {"loss": 0.25, "acc": 0.8, "f1": 0.7, "async": 1.0}
    assert got.data.tags["team"] == "lake" and got.data.tags["mlflow.runName"] == "fluent-1"
    assert sorted(a.path for a in MlflowClient().list_artifacts(rid)) == ["cfg", "notes.txt"]

    # a native run of the same lake, for the shape of its rows
    lake = lake_for(uri)
    native = lake.create_run("fluent", run_name="native-1")
    lake.log_param(native.run_id, "lr", "0.1")
    lake.log_artifact(native.run_id, notes)
    lake.set_terminated(native.run_id)
    lake.flush()  # plain pyiceberg reads what is committed

    runs = sorted(_pyiceberg_rows(wh, "runs", rid), key=lambda r: r["event_seq"])
    natives = sorted(_pyiceberg_rows(wh, "runs", native.run_id), key=lambda r: r["event_seq"])
    assert [r["status"] for r in runs] == ["RUNNING", "FINISHED"] and runs[-1]["run_name"] == "fluent-1"
    assert runs[-1]["experiment_id"] == native.experiment_id
    shape = lambda row: {k for k, val in row.items() if val is not None}  # noqa: E731 - which columns are set
    assert shape(runs[-1]) == shape(natives[-1])
    assert {(p["key"], p["value"]) for p in _pyiceberg_rows(wh, "params", rid)} == {
        ("lr", "0.1"), ("depth", "3"), ("opt", "adam")}
    points = sorted((m["step"], m["value"]) for m in _pyiceberg_rows(wh, "metrics", rid) if m["key"] == "loss")
    assert points == [(0, 0.9), (1, 0.5), (2, 0.25)]
    arts = {a["path"]: a for a in _pyiceberg_rows(wh, "artifacts", rid)}
    assert set(arts) == {"notes.txt", "cfg/config.json"}
    want = hashlib.sha256(notes.read_bytes()).hexdigest()
    assert arts["notes.txt"]["sha256"] == want == _pyiceberg_rows(wh, "artifacts", native.run_id)[0]["sha256"]
    assert arts["notes.txt"]["size"] == notes.stat().st_size

    view = lake.sql("SELECT run_name, status, experiment_name FROM lakeml.runs_latest WHERE run_id = $1",
                    params=[rid]).to_dicts()
    assert view == [{"run_name": "fluent-1", "status": "FINISHED", "experiment_name": "fluent"}]


def test_client_experiments_search_paging_history_and_batch(plugin):
    client = MlflowClient()
    eid = client.create_experiment("search-exp", tags={"owner": "d"})
    with pytest.raises(MlflowException) as e:
        client.create_experiment("search-exp")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert client.get_experiment(eid).name == "search-exp"
    assert client.get_experiment_by_name("search-exp").tags == {"owner": "d"}
    assert client.get_experiment_by_name("no-such-experiment") is None

    ids = {}
    for i in range(6):
        r = client.create_run(eid, run_name=f"r{i}")
        client.log_batch(r.info.run_id, metrics=[Metric("acc", i / 10, 0, 0)],
                         params=[Param("p", "a" if i % 2 == 0 else "b")], tags=[RunTag("i", str(i))])
        client.set_terminated(r.info.run_id)
        ids[i] = r.info.run_id

    found = client.search_runs([eid], "metrics.acc > 0.15 and params.p = 'a'", order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in found] == [ids[4], ids[2]]
    assert found[0].data.params == {"p": "a"} and found[0].data.tags["i"] == "4"

    pages, token = [], None
    while True:
        page = client.search_runs([eid], order_by=["metrics.acc ASC"], max_results=4, page_token=token)
        pages.append([r.info.run_id for r in page])
        token = page.token
        if not token:
            break
    assert pages == [[ids[0], ids[1], ids[2], ids[3]], [ids[4], ids[5]]]
    assert len(mlflow.search_runs([eid])) == 6  # the fluent DataFrame form too

    rid = ids[0]
    client.log_batch(rid, metrics=[Metric("curve", float(s) * 2, 1_700_000_000_000 + s, s) for s in range(5)])
    hist = client.get_metric_history(rid, "curve")
    assert [(m.step, m.value, m.timestamp) for m in hist] == [(s, s * 2.0, 1_700_000_000_000 + s) for s in range(5)]

    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "p", "changed")  # params are write-once
    assert e.value.error_code == "INVALID_PARAMETER_VALUE" and "write-once" in e.value.message
    with pytest.raises(MlflowException) as e:
        client.get_run("0" * 32)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.search_runs([eid], "metrics.acc >>> 1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="append-only"):
        client.delete_run(rid)

    mlflow.set_experiment(experiment_id="0")  # MLflow's default experiment is lakeml's "Default"
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
    assert lake_for(plugin[0]).get_run(run.info.run_id).experiment_name == "Default"
    assert [r.info.run_id for r in client.search_runs(["0"])] == [run.info.run_id]


def test_sklearn_autolog_register_alias_and_load(plugin):
    import numpy as np
    from sklearn.linear_model import LinearRegression

    uri, wh = plugin
    X = np.random.RandomState(0).rand(40, 3)
    y = X @ np.array([1.0, 2.0, 3.0]) + 0.5
    mlflow.set_experiment("sklearn")
    mlflow.sklearn.autolog(log_models=False, log_datasets=True)
    try:
        with mlflow.start_run() as run:
            model = LinearRegression().fit(X, y)  # a regressor: autolog draws no classifier plots (faster)
            # pip_requirements given: MLflow would otherwise spend ~15 s inferring them in a subprocess
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"],
                                            registered_model_name="churn")
    finally:
        mlflow.sklearn.autolog(disable=True)
    rid = run.info.run_id
    got = mlflow.get_run(rid)
    assert got.data.params["fit_intercept"] == "True" and got.data.metrics["training_r2_score"] > 0.999
    assert got.data.tags["estimator_name"] == "LinearRegression"

    client = MlflowClient()
    mv = client.get_model_version("churn", info.registered_model_version)
    assert mv.run_id == rid and mv.version == "1"
    client.set_registered_model_alias("churn", "champion", mv.version)
    assert client.get_model_version_by_alias("churn", "champion").version == "1"
    by_run = mlflow.register_model(f"runs:/{rid}/model", "churn-by-run")  # MLflow 2's source form
    assert (by_run.run_id, by_run.version) == (rid, "1")
    loaded = mlflow.pyfunc.load_model("models:/churn@champion")
    assert np.allclose(loaded.predict(X[:8]), model.predict(X[:8]))
    assert np.allclose(mlflow.pyfunc.load_model(info.model_uri).predict(X[:2]), model.predict(X[:2]))

    # the same version, natively: lineage to the run, the alias, the audit log, the model's files
    lake = lake_for(uri)
    native = lake.get_model_version("churn@champion")
    assert (native.run_id, native.artifact_path, native.flavor) == (rid, "model", "sklearn")
    assert [e.event_type for e in lake.registry_events("churn")][-1] == "alias_set"
    again = lake.register_model("churn-native", run_id=rid, artifact_path="model")  # MLflow's folder, natively
    assert (again.flavor, again.source_uri) == ("sklearn", native.source_uri)
    logged = lake.sql("SELECT model_id, name, status, run_id FROM lakeml.logged_models "
                      "QUALIFY row_number() OVER (PARTITION BY model_id ORDER BY logged_at DESC, event_seq DESC) = 1"
                      ).to_dicts()
    assert logged == [{"model_id": info.model_id, "name": "model", "status": "READY", "run_id": rid}]
    lake.flush()
    arts = {a["path"] for a in _pyiceberg_rows(wh, "artifacts", rid)}
    assert {"model/MLmodel", "model/requirements.txt"} <= arts
    params = {p["key"]: p["value"] for p in _pyiceberg_rows(wh, "params", rid)}
    assert params["fit_intercept"] == "True"
    assert any(i["kind"] == "file" for i in _pyiceberg_rows(wh, "inputs", rid))  # autolog's training dataset


def test_native_run_reads_through_mlflow(plugin):
    uri, _ = plugin
    lake = lake_for(uri)
    run = lake.create_run("native-exp", run_name="nat", tags={"kind": "native"})
    lake.log_params(run.run_id, {"alpha": 0.5})
    for step in range(3):
        lake.log_metric(run.run_id, "rmse", 1.0 / (step + 1), step=step)
    lake.set_terminated(run.run_id)

    df = mlflow.search_runs(experiment_names=["native-exp"])
    assert df["run_id"].tolist() == [run.run_id]
    row = df.iloc[0]
    assert (row["params.alpha"], row["metrics.rmse"], row["tags.kind"]) == ("0.5", 1.0 / 3, "native")
    assert row["tags.mlflow.runName"] == "nat" and row["status"] == "FINISHED"
    got = mlflow.get_run(run.run_id)
    assert got.info.experiment_id == run.experiment_id and got.info.artifact_uri == lake.artifact_uri(run.run_id)
    hist = MlflowClient().get_metric_history(run.run_id, "rmse")
    assert [(m.step, m.value) for m in hist] == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]


def test_lakeml_artifact_uris_go_through_the_lake(plugin, tmp_path):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    uri, wh = plugin
    lake = lake_for(uri)
    run = lake.create_run("art-exp")
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    repo = get_artifact_repository(f"{uri}/runs/{run.run_id}")
    repo.log_artifact(str(src), "tables")
    assert [(f.path, f.is_dir) for f in repo.list_artifacts()] == [("tables", True)]
    assert [(f.path, f.file_size) for f in repo.list_artifacts("tables")] == [("tables/data.csv", 8)]
    got = mlflow.artifacts.download_artifacts(f"{uri}/runs/{run.run_id}/tables/data.csv", dst_path=str(tmp_path / "d"))
    assert open(got).read() == "a,b\n1,2\n"
    recorded = lake.sql("SELECT path, size FROM lakeml.artifacts WHERE run_id = $1", params=[run.run_id]).to_dicts()
    assert recorded == [{"path": "tables/data.csv", "size": 8}]  # written with lake.log_artifact: recorded
    with pytest.raises(MlflowException, match=r"'\.\.'"):
        repo.log_artifact(str(src), "../escape")


def test_catalog_profile_uri(tmp_path, monkeypatch):
    """``lakeml://<catalog>`` opens a pyiceberg catalog profile (here from PYICEBERG_CATALOG__* variables)."""
    wh = tmp_path / "teamwh"
    wh.mkdir()
    monkeypatch.setenv("PYICEBERG_CATALOG__PLUGINTEAM__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__PLUGINTEAM__URI", f"sqlite:///{wh}/cat.db")
    monkeypatch.setenv("PYICEBERG_CATALOG__PLUGINTEAM__WAREHOUSE", wh.as_uri())
    client = MlflowClient(tracking_uri="lakeml://pluginteam")
    try:
        exp = client.create_experiment("team")
        r = client.create_run(exp, run_name="remote-ish")
        client.log_metric(r.info.run_id, "m", 1.5)
        client.set_terminated(r.info.run_id)
        lake = lake_for("lakeml://pluginteam")
        assert lake.config.catalog_name == "pluginteam"
        assert lake.sql("SELECT value FROM lakeml.metrics WHERE run_id = $1", params=[r.info.run_id]).to_dicts() == [
            {"value": 1.5}]
        assert json.loads(json.dumps(client.get_run(r.info.run_id).data.metrics)) == {"m": 1.5}
    finally:
        close("lakeml://pluginteam")
