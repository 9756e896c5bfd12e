"""Self-healing lifecycle projections: a transition whose ``project_events`` commit landed but whose
``projects``/``tasks`` rows never did (the process died in between) is repaired by ``lake.projects.sync()``,
by every board read, and by ``lakeml projects sync``. The crash is simulated by taking the projection
rows out of the committer's buffers before its commit thread ever ticks (a one-hour commit interval),
which is what a killed process loses."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app
from lakeml.identity import acting_as

ROLES = {"customer": "carol", "data_engineer": "dan", "data_scientist": "sam"}


@pytest.fixture
def lake(tmp_path):
    lk = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=3600, commit_deadline=30)
    yield lk
    lk.close()


def _crash_after_ledger_commit(lake) -> tuple[int, int]:
    """Drop the projection rows waiting in the committer, as a process killed right after its ledger commit."""
    return len(lake.committer.buffer("projects").take()), len(lake.committer.buffer("tasks").take())


def _raw_board(lake, project: str) -> dict:
    """The view as SQL users see it, read without the board's self-healing."""
    rows = lake.sql("SELECT status, current_task FROM lakeml.project_board WHERE project = $1",
                    params=[project]).to_dicts()
    return rows[0] if rows else {}


def test_board_read_rebuilds_rows_lost_between_ledger_and_projections(lake):
    with acting_as("carol"):
        lake.projects.create("alpha", customer="retail", roles=ROLES)
        lake.projects.create("beta", customer="online", roles=ROLES)
    lake.flush()
    assert lake.projects.sync().rows == 0  # they agree

    with acting_as("carol"):
        lake.projects.complete("alpha", "problem_statement", deliverables={"doc:problem_statement": "churn"})
    lost_projects, lost_tasks = _crash_after_ledger_commit(lake)
    assert (lost_projects, lost_tasks) == (1, 2)  # alpha's new status; problem_statement done, data_mart ready
    # the ledger moved on, the projections did not: the view shows the old state
    assert lake.projects.get("alpha").status == "in_development"
    assert _raw_board(lake, "alpha") == {"status": "proposed", "current_task": "problem_statement"}

    board = {r["project"]: r for r in lake.projects.board().to_dicts()}
    assert board["alpha"]["status"] == "in_development" and board["alpha"]["current_task"] == "data_mart"
    assert board["beta"]["status"] == "proposed" and board["beta"]["current_task"] == "problem_statement"
    assert _raw_board(lake, "alpha") == {"status": "in_development", "current_task": "data_mart"}
    # the rebuilt rows carry the ledger's event_seq, so a second sync finds nothing to do
    again = lake.projects.sync()
    assert again.rows == 0 and again.ledger_seq == max(e["event_seq"] for e in lake.projects.events("alpha"))
    done = lake.sql("SELECT state, completed_by FROM lakeml.tasks_latest WHERE task_id = 'problem_statement' "
                    "AND project_id = $1", params=[lake.projects.get("alpha").project_id]).to_dicts()
    assert done == [{"state": "completed", "completed_by": "carol"}]


def test_lost_project_creation_is_rebuilt_by_the_cli(lake, tmp_path):
    with acting_as("carol"):
        lake.projects.create("gamma", customer="retail", roles=ROLES)
    assert _crash_after_ledger_commit(lake) == (1, 1)
    assert lake.sql("SELECT count(*) AS n FROM lakeml.projects_latest").to_dicts() == [{"n": 0}]

    env = {"LOGNAME": "carol", "USER": "carol", "LAKEML_WAREHOUSE": str(tmp_path / "wh")}
    r = CliRunner().invoke(app, ["projects", "sync", "-o", "json"], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["projects"] == ["gamma"] and len(out["tasks"]) == 1 and out["rows"] == 2
    r = CliRunner().invoke(app, ["projects", "sync"], env=env, catch_exceptions=False)
    assert r.exit_code == 0 and "nothing to rebuild" in r.stdout
    rows = lake.sql("SELECT name, status, customer FROM lakeml.projects_latest").to_dicts()
    assert rows == [{"name": "gamma", "status": "proposed", "customer": "retail"}]
    assert [t["task_id"] for t in lake.sql("SELECT task_id FROM lakeml.tasks_latest WHERE state = 'ready'")
            .to_dicts()] == ["problem_statement"]


KILLED_WRITER = """
import os, sys
import lakeml
from lakeml.identity import acting_as
lake = lakeml.connect(warehouse=sys.argv[1], commit_interval=3600)
with acting_as("carol"):
    lake.projects.complete("delta", "problem_statement", deliverables={"doc:problem_statement": "x"})
print(lake.committer.pending_rows(), flush=True)
os._exit(0)  # killed: no exit-time flush, the projection rows die with the process
"""


def test_a_process_killed_after_its_ledger_commit_is_healed_by_the_next_board_read(lake, tmp_path):
    import subprocess
    import sys

    with acting_as("carol"):
        lake.projects.create("delta", customer="retail", roles=ROLES)
    lake.flush()
    out = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "wh")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) == 3  # the projects row and two tasks rows were pending when it died
    assert lake.projects.get("delta").status == "in_development"  # the ledger has the transition
    assert _raw_board(lake, "delta") == {"status": "proposed", "current_task": "problem_statement"}
    row = lake.projects.board(customer="retail").to_dicts()[0]
    assert (row["project"], row["status"], row["current_task"]) == ("delta", "in_development", "data_mart")
