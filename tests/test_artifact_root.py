"""Artifacts live outside every table's folder, so no engine's orphan-file cleanup can reach them,
and warehouses written before 0.2 (artifacts inside the `artifacts` table's folder) keep working."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lakeml
from lakeml.storage.artifacts import ArtifactStore, inside, moved_uri
from lakeml.storage.config import resolve
from lakeml.storage.objectstore import filesystem
from tests.conftest import s3_lake_kwargs

LAKEML = [sys.executable, "-m", "lakeml"]


# -- where the root is -----------------------------------------------------------------------------

def test_default_root_is_beside_the_namespace_not_in_a_table(tmp_path):
    cfg = resolve(warehouse=tmp_path / "wh")
    assert cfg.artifact_root == f"{(tmp_path / 'wh').resolve().as_uri()}/lakeml-artifacts"
    assert cfg.legacy_artifact_root == f"{(tmp_path / 'wh').resolve().as_uri()}/lakeml/artifacts"
    s3 = resolve(uri="sqlite:///x.db", warehouse="s3://bkt/wh", namespace="team")
    assert (s3.artifact_root, s3.legacy_artifact_root) == ("s3://bkt/wh/team-artifacts", "s3://bkt/wh/team/artifacts")


def test_an_explicit_root_has_no_legacy_root(tmp_path):
    cfg = resolve(warehouse=tmp_path / "wh", **{"lakeml.artifact-root": "s3://b/arts/"})
    assert (cfg.artifact_root, cfg.legacy_artifact_root) == ("s3://b/arts", None)
    cfg = resolve(uri="sqlite:///x.db", warehouse="s3://b/wh", **{"lakeml.artifact-root": "s3://b/arts"})
    assert (cfg.artifact_root, cfg.legacy_artifact_root) == ("s3://b/arts", None)


def test_inside_and_moved_uri():
    assert inside("s3://b/wh/lakeml/artifacts", "s3://b/wh/lakeml/artifacts/")
    assert inside("s3a://b/wh/lakeml/artifacts/x", "s3://b/wh/lakeml/artifacts")
    assert not inside("s3://b/wh/lakeml-artifacts", "s3://b/wh/lakeml/artifacts")
    assert not inside("s3://b/wh/lakeml/artifacts2", "s3://b/wh/lakeml/artifacts")
    rid, eid = "0" * 32, "a" * 16
    assert moved_uri(f"file:///w/lakeml/artifacts/{eid}/{rid}/m/x.pkl") == f"file:///w/lakeml-artifacts/{eid}/{rid}/m/x.pkl"
    assert moved_uri(f"s3://b/artifacts/{eid}/{rid}/x") is None  # a bucket-level root is not a legacy default
    assert moved_uri(f"s3://b/wh/lakeml-artifacts/{eid}/{rid}/x") is None


# -- orphan cleanup by another engine --------------------------------------------------------------

def engine_orphan_cleanup(tbl, props: dict) -> int:
    """What Spark's remove_orphan_files does, with pyiceberg: delete every file under the table's
    location (any name, any folder) that no metadata reaches. Returns the number deleted."""
    from pyarrow import fs as pafs

    refs = {tbl.metadata_location, *(e.metadata_file for e in tbl.metadata.metadata_log)}
    for snap in tbl.metadata.snapshots:
        refs.add(snap.manifest_list)
        refs.update(m.manifest_path for m in snap.manifests(tbl.io))
    files = tbl.inspect.all_files()
    refs.update(files["file_path"].to_pylist() if files.num_rows else [])
    fs, base = filesystem(tbl.location(), props)
    refs = {filesystem(r, props)[1] for r in refs}
    deleted = 0
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.path not in refs:
            fs.delete_file(info.path)
            deleted += 1
    return deleted


def clean_every_table(lake) -> int:
    """lakeml's own maintenance with no safety age, then the foreign engine's cleanup, on every table."""
    lake.flush()
    lake.maintain(older_than=0)
    return sum(engine_orphan_cleanup(lake.store.table(n, refresh=True), lake.config.properties)
               for n in lake.store.contracts if lake.store.catalog.table_exists(lake.store.identifier(n)))


def log_everything(lake, tmp_path: Path, tag: str) -> dict:
    """A run with files, a folder, a model (registered) and a checkpoint; returns what to check."""
    (tmp_path / tag).mkdir()
    (tmp_path / tag / "report.txt").write_text(f"report {tag}")
    (tmp_path / tag / "plots").mkdir()
    (tmp_path / tag / "plots" / "loss.csv").write_text("step,loss\n0,1.0\n")
    run = lake.create_run(f"exp-{tag}")
    lake.log_artifact(run.run_id, tmp_path / tag / "report.txt")
    lake.log_artifacts(run.run_id, tmp_path / tag / "plots", "plots")
    lake.log_model(run.run_id, math.sqrt, "model")
    mv = lake.register_model(f"m-{tag}", run_id=run.run_id, artifact_path="model")
    lake.log_checkpoint(run.run_id, {"weights": [1, 2, 3], "tag": tag}, step=1)
    lake.set_terminated(run.run_id)
    lake.flush()
    return {"run_id": run.run_id, "model": f"models:/m-{tag}/{mv.version}", "tag": tag}


def assert_all_readable(lake, logged: list[dict], tmp_path: Path) -> None:
    """Every recorded artifact URI reads back with its hash; every run downloads, loads its model and checkpoint."""
    rows = lake.sql("SELECT uri, sha256, run_id, path FROM lakeml.artifacts").rows()
    assert len(rows) >= 3 * len(logged)
    for uri, sha, _, path in rows:
        assert hashlib.sha256(lake.artifacts.read_bytes(uri)).hexdigest() == sha, (uri, path)
    for i, x in enumerate(logged):
        out = Path(lake.download_artifacts(x["run_id"], "", tmp_path / f"dl-{x['tag']}-{i}"))
        assert (out / "report.txt").read_text() == f"report {x['tag']}"
        assert (out / "plots" / "loss.csv").exists() and (out / "model" / "MLmodel").exists()
        assert {a.path for a in lake.list_artifacts(x["run_id"])} >= {"report.txt", "plots", "model"}
        assert lake.load_model(x["model"])(16.0) == 4.0
        assert lake.load_model(f"runs:/{x['run_id']}/model")(9.0) == 3.0
        assert lake.load_checkpoint(x["run_id"], 1)["tag"] == x["tag"]


def test_orphan_cleanup_of_every_table_keeps_every_artifact(lake, tmp_path):
    logged = [log_everything(lake, tmp_path, "new")]
    for name in lake.store.contracts:
        if lake.store.catalog.table_exists(lake.store.identifier(name)):
            assert not inside(lake.config.artifact_root, lake.store.table(name).location())
    clean_every_table(lake)
    assert_all_readable(lake, logged, tmp_path)


def test_the_old_default_would_have_lost_them(file_lake, tmp_path):
    """Why the root moved: with artifacts in the `artifacts` table's folder, a foreign cleanup deletes them."""
    log_everything(file_lake, tmp_path, "x")
    tbl = file_lake.store.table("artifacts", refresh=True)
    legacy = ArtifactStore(file_lake.config.legacy_artifact_root, {})
    Path(legacy.root.removeprefix("file://"), "f" * 16, "0" * 32).mkdir(parents=True)
    Path(legacy.root.removeprefix("file://"), "f" * 16, "0" * 32, "model.pkl").write_bytes(b"weights")
    assert engine_orphan_cleanup(tbl, {}) >= 1
    assert not Path(legacy.root.removeprefix("file://"), "f" * 16, "0" * 32, "model.pkl").exists()


# -- warehouses written before 0.2 ----------------------------------------------------------------

def _connect(lake, tmp_path: Path, **props):
    if lake.kind == "file":
        return lakeml.connect(warehouse=lake.config.warehouse_dir, commit_interval=0.2, commit_deadline=30, **props)
    server, bucket = lake.s3
    return lakeml.connect(commit_interval=0.2, commit_deadline=30, **s3_lake_kwargs(server, bucket, tmp_path), **props)


@pytest.fixture
def old_lake(lake, request, tmp_path):
    """``lake`` as it is reopened after an upgrade, and what a pre-0.2 lakeml had logged into it (it wrote
    its artifacts to <warehouse>/<namespace>/artifacts: simulated with that explicit root)."""
    if lake.kind == "s3":
        lake.s3 = request.getfixturevalue("s3_bucket")
    lake.close()
    old = _connect(lake, tmp_path, **{"lakeml.artifact-root": lake.config.legacy_artifact_root})
    assert old.config.artifact_root == lake.config.legacy_artifact_root
    logged = [log_everything(old, tmp_path, "old")]
    old.close()
    upgraded = _connect(lake, tmp_path)
    yield upgraded, logged
    upgraded.close()


def test_old_runs_read_where_they_are_and_new_files_go_out_of_the_table(old_lake, tmp_path):
    lake, logged = old_lake
    rid = logged[0]["run_id"]
    assert lake.artifacts.legacy_runs() == 1
    assert_all_readable(lake, logged, tmp_path)
    # a new artifact of the old run goes to the new root; the run's listing merges both places
    (tmp_path / "late.txt").write_text("late")
    lake.log_artifact(rid, tmp_path / "late.txt")
    lake.flush()
    assert {a.path for a in lake.list_artifacts(rid)} == {"report.txt", "plots", "model", "checkpoints", "late.txt"}
    late_uri = lake.sql("SELECT uri FROM lakeml.artifacts WHERE path = 'late.txt'").rows()[0][0]
    assert late_uri.startswith(lake.config.artifact_root + "/")
    assert (Path(lake.download_artifacts(rid, "", tmp_path / "both")) / "late.txt").read_text() == "late"
    logged.append(log_everything(lake, tmp_path, "new"))  # a run logged after the upgrade
    lake.maintain(older_than=0)  # lakeml's own cleanup only looks at data/ and metadata/
    assert_all_readable(lake, logged, tmp_path)


def test_migration_moves_them_out_and_recorded_uris_keep_resolving(old_lake, tmp_path):
    lake, logged = old_lake
    from lakeml.cli.doctor import run_checks

    if lake.config.embedded:  # doctor runs on the embedded warehouse (the S3 lake is configured by keywords)
        report = run_checks(None, lake.config.warehouse_dir)
        check = next(c for c in report["checks"] if c["name"] == "artifact root")
        assert check["ok"] and check["warn"] and "1 run(s)" in check["detail"] and "migrate-artifacts" in check["detail"]
    assert lake.artifacts.migrate_legacy() > 0
    assert lake.artifacts.legacy_runs() == 0
    assert lake.artifacts.migrate_legacy() == 0  # idempotent
    # every recorded URI still names the legacy place: it resolves to where the file went
    legacy_uris = [u for (u,) in lake.sql("SELECT uri FROM lakeml.artifacts").rows()
                   if u.startswith(lake.config.legacy_artifact_root)]
    assert legacy_uris and all(moved_uri(u) for u in legacy_uris)
    deleted = clean_every_table(lake)  # now a foreign engine's cleanup is harmless
    assert_all_readable(lake, logged, tmp_path)
    if lake.config.embedded:
        report = run_checks(None, lake.config.warehouse_dir)
        check = next(c for c in report["checks"] if c["name"] == "artifact root")
        assert check["ok"] and not check["warn"], check
    assert deleted >= 0


def test_migrate_artifacts_command(tmp_path):
    wh = tmp_path / "wh"
    cfg = resolve(warehouse=wh)
    old = lakeml.connect(warehouse=wh, **{"lakeml.artifact-root": cfg.legacy_artifact_root})
    run = old.create_run("e")
    (tmp_path / "a.txt").write_text("a")
    old.log_artifact(run.run_id, tmp_path / "a.txt", "d")
    old.close()
    proc = subprocess.run([*LAKEML, "migrate-artifacts", "-w", str(wh)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"moved 1 file(s) of 1 run(s) from {cfg.legacy_artifact_root} to {cfg.artifact_root}"
    moved = wh / "lakeml-artifacts" / run.experiment_id / run.run_id / "d" / "a.txt"
    assert moved.read_text() == "a"
    assert not (wh / "lakeml" / "artifacts" / run.experiment_id).exists()  # emptied folders removed too


def test_doctor_warns_about_a_root_inside_a_table(tmp_path):
    wh = tmp_path / "wh"  # (a healthy warehouse has no warning: tests/test_cli.py's doctor tests)
    wh.mkdir()
    inside_table = f"{wh.resolve().as_uri()}/lakeml/metrics/extra"
    p = "PYICEBERG_CATALOG__X__"
    env = {**os.environ, "LAKEML_CATALOG": "x", f"{p}TYPE": "sql", f"{p}URI": f"sqlite:///{wh}/catalog.db",
           f"{p}WAREHOUSE": wh.resolve().as_uri(), f"{p}LAKEML__ARTIFACT_ROOT": inside_table}
    proc = subprocess.run([*LAKEML, "doctor", "-o", "json"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a warning, not a failure
    check = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}["artifact root"]
    assert check["ok"] and check["warn"]
    assert "x.metrics" not in check["detail"] and "lakeml.metrics" in check["detail"]
    assert inside_table in check["detail"] and "lakeml.artifact-root" in check["detail"]
    text = subprocess.run([*LAKEML, "doctor"], capture_output=True, text=True, timeout=120, env=env)
    assert "WARN  artifact root" in text.stdout
