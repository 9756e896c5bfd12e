"""docs/cicd.md: the GitHub Actions workflow and the GitLab CI file run, step by step, against a temporary
warehouse; and `lakeml models promote` as a CI step (exit 2 with the failed rules, or the alias moved).

The steps are taken from the docs' YAML blocks and run with bash in order (`pip install` lines are
skipped: no network here; the venv running the tests is first on PATH instead)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app as cli

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "cicd.md").read_text()
BIN = str(Path(sys.executable).parent)  # the venv running the tests: its python and lakeml come first on PATH

pytest.importorskip("sklearn")


def _yaml_blocks() -> list[dict]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC, re.S)]


def github_steps() -> list[tuple[str, str]]:
    wf = next(b for b in _yaml_blocks() if "jobs" in b)
    (job,) = wf["jobs"].values()
    return [(s.get("name", s.get("uses")), s["run"]) for s in job["steps"] if "run" in s]


def gitlab_steps() -> list[tuple[str, str]]:
    ci = next(b for b in _yaml_blocks() if "stages" in b)
    jobs = {k: v for k, v in ci.items() if isinstance(v, dict) and "stage" in v}
    out = [("before_script", line) for line in ci["default"]["before_script"]]
    for stage in ci["stages"]:
        for name, job in jobs.items():
            if job["stage"] == stage:
                out += [(name, line) for line in job["script"]]
    return out


def _is_install(script: str) -> bool:
    return script.strip().startswith("pip install")


def run_pipeline(steps, workdir: Path, env: dict) -> list[tuple[str, int, str]]:
    """Run each step with bash (-e, pipefail) in ``workdir``; stop at the first failure like CI does."""
    done = []
    for name, script in steps:
        if _is_install(script):
            continue
        p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=300)
        done.append((name, p.returncode, p.stdout + p.stderr))
        if p.returncode != 0:
            break
    return done


@pytest.fixture(scope="module")
def ci(tmp_path_factory):
    base = tmp_path_factory.mktemp("cicd")
    wh = base / "wh"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEML_", "PYICEBERG_"))}
    env.update(LAKEML_WAREHOUSE=str(wh), PATH=f"{BIN}:{env.get('PATH', '')}", GITHUB_SHA="0123456789abcdef0123",
               CI_COMMIT_SHORT_SHA="89abcdef", USER="ci-pipeline", LOGNAME="ci-pipeline")
    return base, wh, env


def _workdir(base: Path, name: str) -> Path:
    d = base / name
    d.mkdir()
    (d / "examples").symlink_to(ROOT / "examples")  # the repository checkout the steps run in
    return d


def test_the_docs_have_both_pipelines_in_the_documented_order():
    names = [n for n, s in github_steps()]
    assert names == ["Install", "Train", "Evaluate", "Register", "Gate", "Package", "Record the deployment"]
    jobs = [n for n, s in gitlab_steps()]
    assert jobs == ["before_script", "train", "evaluate", "register", "gate", "package", "deploy"]
    assert [s for _, s in github_steps() + gitlab_steps() if _is_install(s)] == ['pip install "lakeml[sklearn]"'] * 2


def test_github_workflow_then_gitlab_pipeline_against_a_gate(ci):
    base, wh, env = ci
    # 1. GitHub Actions, no gates yet: every step passes
    work = _workdir(base, "gh")
    done = run_pipeline(github_steps(), work, env)
    assert [(n, c) for n, c, _ in done] == [(n, 0) for n, s in github_steps() if not _is_install(s)], done[-1][2]
    version = int((work / "version.txt").read_text())
    assert version == 1
    assert {"serve.py", "Dockerfile", "requirements.txt", "k8s"} <= {p.name for p in (work / "dist/churn-ci").iterdir()}
    lake = lakeml.connect(warehouse=wh)
    try:
        assert lake.get_model_version("churn-ci@champion").version == 1
        dep = lake.registry.deployments.list_deployments("churn-ci", environment="prod")
        assert [(d.version, d.service, d.service_version, d.deployed_by) for d in dep] == [
            (1, "churn-api", "0123456789ab", "ci-pipeline")]
        lin = lake.model_lineage("churn-ci", 1)
        assert lin.metrics["val_accuracy"] > 0.8 and [i.name for i in lin.inputs] == ["ci.churn_features"]
        # 2. the owner sets a gate the model cannot meet
        lake.set_gates("churn-ci", min_metrics={"val_accuracy": 0.99}, aliases=["champion"])
    finally:
        lake.close()
    work = _workdir(base, "gl")
    done = run_pipeline(gitlab_steps(), work, env)
    assert [(n, c) for n, c, _ in done] == [("train", 0), ("evaluate", 0), ("register", 0), ("gate", 2)]
    out = done[-1][2]
    assert "promotion refused: churn-ci version 2 -> @champion" in out and "val_accuracy" in out and "0.99" in out
    assert not (work / "dist").exists()
    lake = lakeml.connect(warehouse=wh)
    try:
        assert lake.get_model_version("churn-ci@champion").version == 1  # unmoved
        assert [d.version for d in lake.registry.deployments.list_deployments("churn-ci", environment="prod")] == [1]
        refused = [e for e in lake.registry.registry_events("churn-ci") if e.outcome == "refused"]
        assert [(e.version, e.alias, e.actor) for e in refused] == [(2, "champion", "ci-pipeline")]
    finally:
        lake.close()


def test_promote_passes_fails_and_records(tmp_path):
    from tests.serving_util import register_constant

    wh = tmp_path / "wh"
    lake = lakeml.connect(warehouse=wh)
    try:
        register_constant(lake, "p", 1.0, metric=0.5)
        register_constant(lake, "p", 2.0, metric=0.9)
        lake.set_gates("p", min_metrics={"score": 0.8}, aliases=["champion"], environments=["prod"])
    finally:
        lake.close()
    run = CliRunner().invoke
    r = run(cli, ["models", "promote", "p", "--version", "1", "--to", "champion", "-w", str(wh)])
    assert r.exit_code == 2 and "1 gate rule(s) failed" in r.output and "score" in r.output
    r = run(cli, ["models", "promote", "p", "--version", "1", "--to", "champion", "--dry-run", "-w", str(wh),
                  "--output", "json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and doc["passed"] is False and len(doc["failed_rules"]) == 1 and doc["dry_run"]
    r = run(cli, ["models", "promote", "p", "--version", "2", "--to", "champion", "--environment", "prod",
                  "--service", "p-api", "-w", str(wh)])
    assert r.exit_code == 0, r.output
    assert "promoted p version 2 -> @champion and recorded in prod/p-api (1 gate rule(s) passed)" in r.output
    r = run(cli, ["models", "promote", "p", "--version", "1", "--to", "staging", "--environment", "prod",
                  "-w", str(wh)])
    assert r.exit_code == 2  # the environment's gate fails first: the staging alias is not set either
    lake = lakeml.connect(warehouse=wh)
    try:
        assert lake.get_model_version("p@champion").version == 2
        assert [(d.version, d.service) for d in lake.registry.deployments.list_deployments("p")] == [(2, "p-api")]
        assert "staging" not in lake.registry.get_model("p").aliases
    finally:
        lake.close()
