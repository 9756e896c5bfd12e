"""`lakeml models package`: the folder, its pinned requirements, manifests that parse, and the entrypoint
running from a fresh venv (no docker here) with and without a lake.

The fresh venv: `python -m venv --without-pip` (no internet, so nothing can be pip-installed); a .pth
file adds this checkout's .venv site-packages, standing for `pip install -r requirements.txt`, and a
check run inside the new venv proves every pinned requirement is met at exactly that version."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app as cli
from tests.serving_util import register_iris, wait_for
from tests.servers import free_port

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    base = tmp_path_factory.mktemp("packaging")
    wh = base / "wh"
    lake = lakeml.connect(warehouse=wh, commit_interval=0.2)
    clf, X = register_iris(lake)
    lake.close()
    out = base / "svc"
    r = CliRunner().invoke(cli, ["models", "package", "models:/iris@champion", "-o", str(out), "--k8s", "--kserve",
                                 "--warehouse", str(wh), "--output", "json"])
    assert r.exit_code == 0, r.output
    return out, json.loads(r.output), clf, X, wh


def test_folder_holds_model_requirements_entrypoint_dockerfile(packaged):
    out, res, _, _, _ = packaged
    files = set(res["files"])
    assert {"model/MLmodel", "model/model.joblib", "requirements.txt", "serve.py", "Dockerfile", "serving.json",
            "k8s/deployment.yaml", "k8s/inferenceservice.yaml"} <= files
    meta = json.loads((out / "serving.json").read_text())
    assert (meta["model_name"], meta["model_version"], meta["resolved_uri"]) == ("iris", 1, "models:/iris/1")
    assert meta["lineage"]["metrics"]["accuracy"] > 0.9 and meta["signature"]["inputs"][0]["name"] == "sepal_length"
    reqs = (out / "requirements.txt").read_text().split()
    assert all("==" in r for r in reqs), reqs
    import sklearn
    import fastapi

    assert f"scikit-learn=={sklearn.__version__}" in reqs and f"lakeml=={lakeml.__version__}" in reqs
    assert f"fastapi=={fastapi.__version__}" in reqs
    docker = (out / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info[0]}.{sys.version_info[1]}-slim" in docker
    assert "RUN pip install -r requirements.txt" in docker and "EXPOSE 8080" in docker
    assert 'ENTRYPOINT ["python", "serve.py", "--host", "0.0.0.0", "--port", "8080"]' in docker


def test_k8s_and_kserve_manifests_parse(packaged):
    out, res, _, _, _ = packaged
    docs = list(yaml.safe_load_all((out / "k8s/deployment.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    dep, svc = docs
    assert dep["apiVersion"] == "apps/v1" and svc["apiVersion"] == "v1"
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    assert c["image"] == res["image"] == "lakeml-iris:1"
    assert c["ports"][0]["containerPort"] == 8080
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    isvc = yaml.safe_load((out / "k8s/inferenceservice.yaml").read_text())
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    kc = isvc["spec"]["predictor"]["containers"][0]
    assert kc["image"] == "lakeml-iris:1" and kc["ports"][0]["containerPort"] == 8080
    assert isvc["metadata"]["name"] == dep["metadata"]["name"] == "iris-v1"


def test_package_refuses_a_used_folder_and_a_non_registry_uri(packaged, tmp_path):
    _, _, _, _, wh = packaged
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("x")
    r = CliRunner().invoke(cli, ["models", "package", "models:/iris/1", "-o", str(tmp_path / "used"), "-w", str(wh)])
    assert r.exit_code == 1 and "not an empty folder" in r.output
    assert (tmp_path / "used" / "keep.txt").read_text() == "x"
    r = CliRunner().invoke(cli, ["models", "package", "runs:/" + "a" * 32 + "/model", "-o", str(tmp_path / "x"), "-w", str(wh)])
    assert r.exit_code == 1 and "registered model" in r.output


def _fresh_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    py = where / "bin" / "python"
    site_dir = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site_dir, "zz_lakeml_test.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return py


CHECK = """
import importlib.metadata, sys
bad = []
for line in open(sys.argv[1]):
    name, _, want = line.strip().partition("==")
    try:
        have = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        have = None
    if have != want:
        bad.append(f"{name}: want {want}, have {have}")
print("\\n".join(bad) or "all pinned requirements met")
sys.exit(1 if bad else 0)
"""


def test_entrypoint_serves_from_a_fresh_venv_without_a_lake_then_logging_to_one(packaged, tmp_path):
    src, _, clf, X, _ = packaged
    folder = tmp_path / "copy"
    shutil.copytree(src, folder)  # the folder is self-contained: it works wherever it is copied
    py = _fresh_venv(tmp_path / "venv")
    chk = subprocess.run([str(py), "-c", CHECK, str(folder / "requirements.txt")], capture_output=True, text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEML_", "PYICEBERG_"))}
    rows = X.iloc[[1, 70, 140]]
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    for log_to in (None, tmp_path / "prod-wh"):
        port = free_port()
        cwd = tmp_path / ("run-log" if log_to else "run")
        cwd.mkdir()
        args = [str(py), str(folder / "serve.py"), "--port", str(port)]
        if log_to:
            args += ["--log-predictions", "--warehouse", str(log_to)]
        with open(cwd / "out.log", "wb") as log:
            proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            wait_for(f"http://127.0.0.1:{port}/health", proc=proc)
            r = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, headers={"X-Request-Id": "pkg-1"})
            assert r.status_code == 200 and r.json() == {"predictions": clf.predict(rows).tolist()}
            meta = httpx.get(f"http://127.0.0.1:{port}/metadata").json()
            assert meta["model_version"] == 1 and meta["log_predictions"] is bool(log_to)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            code = proc.wait(60)
        # uvicorn drains, runs the shutdown (the logger commits), then re-raises SIGTERM: -15 is a clean stop
        assert code in (0, -signal.SIGTERM), (cwd / "out.log").read_text()[-3000:]
        assert sorted(p.name for p in cwd.iterdir()) == ["out.log"]  # no lake made next to it
    lake = lakeml.connect(warehouse=tmp_path / "prod-wh")
    try:
        got = lake.sql("SELECT request_id, row_index, model_name, model_version FROM lakeml.predictions "
                       "ORDER BY row_index").rows()
    finally:
        lake.close()
    assert got == [("pkg-1", 0, "iris", 1), ("pkg-1", 1, "iris", 1), ("pkg-1", 2, "iris", 1)]
