"""The README's quickstart snippet (docs_src/quickstart.py [log]), run verbatim as a script: in the
embedded default warehouse (no configuration at all) and against a pyiceberg catalog named by the
environment (S3 on moto)."""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import subprocess
import sys

import pyarrow as pa

import lakeml
from lakeml import RunStatus
from tests.docs_blocks import ROOT, regions

# The README's quickstart, exactly as the README shows it (tests/test_docs_src.py keeps them equal).
SNIPPET = regions(ROOT / "docs_src" / "quickstart.py")["log"]


def _prepare(lake, cwd) -> int:
    """A real feature table and a real tiny model.pkl; returns the table's snapshot id."""
    from sklearn.linear_model import LogisticRegression

    features = pa.table({"tenure": [1.0, 5.0, 20.0, 40.0, 3.0, 30.0], "churned": [1, 1, 0, 0, 1, 0]})
    lake.store.catalog.create_namespace("analytics")
    tbl = lake.store.catalog.create_table("analytics.churn_features", schema=features.schema)
    tbl.append(features)
    model = LogisticRegression().fit([[t] for t in features["tenure"].to_pylist()], features["churned"].to_pylist())
    (cwd / "model.pkl").write_bytes(pickle.dumps(model))
    return tbl.current_snapshot().snapshot_id


def _run_snippet(cwd, env) -> str:
    script = SNIPPET + "print(run.info.run_id)\n"
    (cwd / "train.py").write_text(script)
    out = subprocess.run([sys.executable, "train.py"], cwd=cwd, capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def _check(lake, run_id: str, snapshot_id: int, cwd) -> None:
    run = lake.get_run(run_id)
    assert (run.status, run.experiment_name, run.run_name) == (RunStatus.FINISHED, "churn", "xgb-depth6")
    assert run.params == {"lr": "0.1", "max_depth": "6"} and run.tags == {"team": "growth"}
    assert run.source.endswith("train.py")
    hist = lake.get_metric_history(run_id, "loss")
    assert hist.height == 10_000 and hist["step"].to_list() == list(range(10_000))
    assert hist["value"].to_list() == [math.exp(-step / 2_000) for step in range(10_000)]
    [di] = run.inputs
    assert (di.kind, di.table, di.snapshot_id, di.role) == ("iceberg", "analytics.churn_features", snapshot_id,
                                                            "train")
    assert [a.path for a in lake.list_artifacts(run_id)] == ["model.pkl"]
    data = (cwd / "model.pkl").read_bytes()
    rows = lake.engine.arrow("SELECT size, sha256 FROM lakeml.artifacts WHERE run_id = $1", [run_id],
                             tables=["artifacts"]).to_pylist()
    assert rows == [{"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    back = pickle.loads(open(lake.download_artifacts(run_id, "model.pkl", cwd / "dl"), "rb").read())
    assert back.predict([[2.0]]).tolist() == [1]


def test_snippet_in_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LAKEML_WAREHOUSE", "LAKEML_CATALOG")}
    with lakeml.connect(warehouse=tmp_path / "lakeml-warehouse") as lake:  # where the default puts it
        snap = _prepare(lake, tmp_path)
    run_id = _run_snippet(tmp_path, env)
    assert (tmp_path / "lakeml-warehouse" / "catalog.db").is_file()
    with lakeml.connect(warehouse=tmp_path / "lakeml-warehouse") as lake:
        _check(lake, run_id, snap, tmp_path)


def test_snippet_against_a_named_catalog_on_s3(s3_bucket, tmp_path, monkeypatch):
    server, bucket = s3_bucket
    props = {"uri": f"sqlite:///{tmp_path / 'catalog.db'}", "warehouse": f"s3://{bucket}/wh", **server.props()}
    monkeypatch.delenv("LAKEML_WAREHOUSE", raising=False)
    monkeypatch.setenv("LAKEML_CATALOG", "prod")
    for k, val in props.items():  # pyiceberg's own convention: PYICEBERG_CATALOG__<NAME>__<KEY>
        monkeypatch.setenv("PYICEBERG_CATALOG__PROD__" + k.upper().replace(".", "__").replace("-", "_"), val)
    work = tmp_path / "job"
    work.mkdir()
    with lakeml.connect() as lake:
        assert (lake.config.catalog_name, lake.config.warehouse) == ("prod", f"s3://{bucket}/wh")
        snap = _prepare(lake, work)
    run_id = _run_snippet(work, dict(os.environ))
    assert not (work / "lakeml-warehouse").exists(), "nothing written locally"
    with lakeml.connect() as lake:
        _check(lake, run_id, snap, work)


def test_a_second_client_in_the_process_reads_the_run_at_once(tmp_path):
    """The README reads the run back with `lakeml.connect()` right after the `with` block: a read in
    the same process commits what the process has pending, whichever client logged it."""
    wh = tmp_path / "wh"
    writer = lakeml.connect(warehouse=wh, commit_interval=3600)  # commits only when asked
    lakeml.set_lake(writer)
    try:
        with lakeml.start_run(experiment="churn") as run:
            lakeml.log_param("max_depth", 6)
            lakeml.log_metric("loss", 0.5, step=1)
        with lakeml.connect(warehouse=wh) as reader:
            got = reader.get_run(run.id)
            assert (got.status, got.params) == (RunStatus.FINISHED, {"max_depth": "6"})
            assert reader.search_runs("churn").height == 1
    finally:
        lakeml.set_lake(None)
        writer.close()
