"""``lakeml projects``, ``lakeml tasks`` and ``lakeml new project``: the real CLI in-process (typer's
CliRunner), the acting user being the OS user (``$LOGNAME``/``$USER``), over a real warehouse."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app


@pytest.fixture
def cli(tmp_path):
    wh = str(tmp_path / "wh")

    def run(user: str, *args: str, code: int = 0):
        env = {"LOGNAME": user, "USER": user, "LAKEML_WAREHOUSE": wh}
        r = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
        assert r.exit_code == code, (r.stdout, r.stderr)
        if code:
            assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: "), r.stderr
        return r

    run.warehouse = wh
    return run


def test_projects_and_tasks_commands(cli, tmp_path):
    r = cli("carol", "projects", "create", "churn", "--problem", "customers leave", "--customer", "retail",
            "--role", "customer=carol", "--role", "data_engineer=dan,dora", "--role", "data_scientist=sam",
            "--experiment", "churn-exp", "--model", "churn", "--target-date", "2027-03-31")
    assert "created project churn (proposed); ready: problem_statement" in r.stdout
    cli("carol", "projects", "create", "churn", code=1)  # taken

    listed = json.loads(cli("sam", "projects", "list", "-o", "json").stdout)
    assert [(p["name"], p["status"], p["target_date"]) for p in listed] == [("churn", "proposed", "2027-03-31")]

    assert json.loads(cli("sam", "tasks", "list", "--mine", "-o", "json").stdout) == []
    mine = json.loads(cli("carol", "tasks", "list", "--mine", "-o", "json").stdout)
    assert [(t["project"], t["task_id"], t["required"]) for t in mine] == \
        [("churn", "problem_statement", "doc:problem_statement")]

    r = cli("carol", "tasks", "complete", "churn", "problem_statement", code=1)
    assert "doc:problem_statement" in r.stderr and "missing" in r.stderr
    r = cli("sam", "tasks", "complete", "churn", "problem_statement", "--set", "doc:problem_statement=x", code=1)
    assert "RoleError" in r.stderr and "role 'customer'" in r.stderr
    r = cli("carol", "tasks", "complete", "churn", "problem_statement", "--set", "link:x=y", code=1)
    assert "does not ask for link:x" in r.stderr
    doc = tmp_path / "ps.md"
    doc.write_text("Churn costs 5% of revenue a year.")
    r = cli("carol", "tasks", "complete", "churn", "problem_statement", "--set", f"doc:problem_statement=@{doc}",
            "--comment", "first draft")
    assert "ready now: data_mart" in r.stdout and "(in_development)" in r.stdout

    # two data engineers: nobody is assigned until a reassign; the assignee alone may complete
    assert [t["assignee"] for t in json.loads(cli("dan", "tasks", "list", "--mine", "-o", "json").stdout)] == [None]
    cli("dan", "tasks", "reassign", "churn", "data_mart", "sam", code=1)  # sam is no data engineer
    assert "assigned to dora" in cli("dan", "tasks", "reassign", "churn", "data_mart", "dora").stdout
    assert json.loads(cli("dan", "tasks", "list", "--mine", "-o", "json").stdout) == []
    r = cli("dan", "tasks", "complete", "churn", "data_mart", "--set", "link:mart=s3://m", code=1)
    assert "assigned to 'dora'" in r.stderr

    board = json.loads(cli("sam", "projects", "board", "-o", "json", "--html", str(tmp_path / "w.html")).stdout)
    assert [(b["project"], b["status"], b["current_step"], b["assignee"]) for b in board] == \
        [("churn", "in_development", "Data mart", "dora")]
    assert "Model projects: week ending" in (tmp_path / "w.html").read_text()
    text = cli("sam", "projects", "board").stdout
    assert "days_in_step" in text.splitlines()[0] and "churn" in text

    shown = json.loads(cli("sam", "projects", "show", "churn", "-o", "json").stdout)
    kinds = [e["event_type"] for e in shown["events"]]
    assert kinds == ["project_created", "task_ready", "task_refused", "task_completed", "task_ready",
                     "task_reassigned"]
    assert shown["events"][3]["actor"] == "carol" and shown["events"][3]["comment"] == "first draft"
    assert "history" in cli("sam", "projects", "show", "churn").stdout

    cli("dan", "projects", "cancel", "churn", "--reason", "no", code=1)  # not the customer
    assert "cancelled" in cli("carol", "projects", "cancel", "churn", "--reason", "budget cut").stdout
    assert json.loads(cli("sam", "tasks", "list", "-o", "json").stdout) == []
    all_tasks = json.loads(cli("sam", "tasks", "list", "churn", "--all", "-o", "json").stdout)
    assert sorted(t["state"] for t in all_tasks) == ["cancelled", "completed"]

    # the lake seen by another client: projections committed, the same board in SQL
    with lakeml.connect(warehouse=cli.warehouse) as lake:
        rows = lake.sql("SELECT project, status, cancel_reason FROM lakeml.project_board").rows()
    assert rows == [("churn", "cancelled", "budget cut")]


def test_gates_cli_lifecycle_step(cli):
    with lakeml.connect(warehouse=cli.warehouse) as lake:
        run = lake.create_run("e")
        lake.log_model(run.run_id, lambda rows: rows, "model", flavor="python")
        lake.set_terminated(run.run_id, wait=True)
        lake.register_model("m", run_id=run.run_id)
    r = cli("ops", "models", "gates", "m", "--lifecycle-step", "approval", "--alias", "production")
    assert "lifecycle step approval done" in r.stdout
    r = cli("ops", "models", "alias", "m", "production", "1", code=1)
    assert "lifecycle step 'approval' is not done" in r.stderr


def test_new_project_renders_the_template_and_trains(tmp_path):
    dest = tmp_path / "churn-model"
    r = CliRunner().invoke(app, ["new", "project", "churn-model", "--dest", str(dest), "--data", "metric=accuracy"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [".github/workflows/ci.yml", ".gitignore", "README.md", "config.yaml", "src/model.py",
                     "src/train.py"]
    ci = yaml.safe_load((dest / ".github/workflows/ci.yml").read_text())
    steps = [s.get("run", "") for s in ci["jobs"]["train"]["steps"]]
    assert any(s.startswith("lakeml models promote churn_model") for s in steps)
    assert yaml.safe_load((dest / "config.yaml").read_text())["model_name"] == "churn_model"
    r2 = CliRunner().invoke(app, ["new", "project", "churn-model", "--dest", str(dest)])
    assert r2.exit_code == 1 and "not empty" in r2.stderr

    # the generated entry point trains, logs and registers a pyfunc-style model that loads back
    wh = tmp_path / "wh"
    out = subprocess.run([sys.executable, "src/train.py"], cwd=dest, capture_output=True, text=True, timeout=120,
                         env={"LAKEML_WAREHOUSE": str(wh), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "registered churn_model version 1" in out.stdout
    assert (dest / "registered_version.txt").read_text().strip() == "1"
    with lakeml.connect(warehouse=wh) as lake:
        model = lake.load_model("models:/churn_model/1")
        assert model.predict([{"x1": 3.0, "x2": 0.0}, {"x1": -3.0, "x2": 0.0}]) == [1, 0]
