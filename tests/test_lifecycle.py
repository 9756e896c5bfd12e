"""The model lifecycle (issue 13): a full walk through the default BPMN process with users in
different roles, on a real Iceberg catalog, real Parquet, real DuckDB and a real webhook receiver
on loopback; two processes racing on one task; the HTTP routes with token roles."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import lakeml
from lakeml.errors import ConflictError, GateError, InvalidInputError, RoleError
from lakeml.identity import acting_as

ROOT = Path(__file__).resolve().parent.parent
ROLES = {"customer": "carol", "data_engineer": "dan", "data_scientist": "sam", "validator": "vera",
         "mlops_engineer": "max"}


class Receiver:
    """A webhook receiver: a real HTTP server on loopback that keeps every JSON body posted to it."""

    def __init__(self):
        self.got: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, kind: str) -> list[dict]:
        return [e for e in self.got if e["event"] == kind]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hooks_yaml(tmp_path: Path, url: str) -> Path:
    p = tmp_path / "notifications.yaml"
    p.write_text(f"webhooks:\n  - url: {url}\n    events: [task_ready, step_idle, status_changed]\n")
    return p


def train(lake, experiment: str, auc: float) -> str:
    """A real run with a real model folder (python flavor), registered as the next version of churn."""
    run = lake.create_run(experiment, run_name=f"auc-{auc}")
    lake.log_metric(run.run_id, "auc", auc)
    lake.log_model(run.run_id, lambda rows: [0 for _ in rows], "model", flavor="python")
    lake.set_terminated(run.run_id, wait=True)
    return run.run_id


def test_walk_through_default_process(file_lake, receiver, tmp_path):
    lake = file_lake
    lake.projects.configure_notifications(hooks_yaml(tmp_path, receiver.url))
    with acting_as("carol"):
        p = lake.projects.create("churn", problem="Customers leave", customer="retail", roles=ROLES,
                                 experiments=["churn-exp"], models=["churn"], target_date="2027-06-30",
                                 expected_value=250000)
    assert p.status == "proposed"
    assert [t.task_id for t in lake.projects.tasks("churn")] == ["problem_statement"]
    assert receiver.events("task_ready")[-1]["task"] == "problem_statement"
    assert receiver.events("task_ready")[-1]["users"] == ["carol"]

    # a missing deliverable: the error lists exactly what is missing, and the refusal is recorded
    with acting_as("carol"), pytest.raises(InvalidInputError) as e:
        lake.projects.complete("churn", "problem_statement")
    assert "1 deliverable(s) missing" in str(e.value) and "doc:problem_statement" in str(e.value)
    assert lake.projects.tasks("churn")[0].blocked_by.startswith("doc:problem_statement")

    # the wrong role is refused, naming the role and who holds it
    with acting_as("sam"), pytest.raises(RoleError, match="belongs to role 'customer'.*carol"):
        lake.projects.complete("churn", "problem_statement", deliverables={"doc:problem_statement": "x"})

    with acting_as("carol"):
        ready = lake.projects.complete("churn", "problem_statement",
                                       deliverables={"doc:problem_statement": "Churn costs 5% of revenue."})
    assert [t.task_id for t in ready] == ["data_mart"]
    assert lake.projects.get("churn").status == "in_development"
    assert receiver.events("status_changed")[-1]["status"] == "in_development"

    with acting_as("dan"), pytest.raises(InvalidInputError) as e:  # two of three missing, both named
        lake.projects.complete("churn", "data_mart", deliverables={"link:mart_code": "git@example.com:mart.git"})
    assert "2 deliverable(s) missing" in str(e.value)
    assert "link:mart:" in str(e.value) and "doc:mart:" in str(e.value) and "mart_code" not in str(e.value)
    mart_doc = tmp_path / "mart.md"
    mart_doc.write_text("# Churn mart\nOne row per customer and month.\n")
    with acting_as("dan"):
        lake.projects.complete("churn", "data_mart", deliverables={
            "link:mart_code": "git@example.com:mart.git", "link:mart": "sales.churn_mart", "doc:mart": str(mart_doc)})

    # experiments need a registered version and the model artifact in a run of the project's experiment
    with acting_as("sam"), pytest.raises(InvalidInputError, match="model_version.*none registered"):
        lake.projects.complete("churn", "experiments")
    run1 = train(lake, "churn-exp", 0.71)
    lake.register_model("churn", run_id=run1)
    with acting_as("sam"):
        lake.projects.complete("churn", "experiments", model="churn/1", comment="baseline")

    # the promotion gate blocks production until the approval step is done
    lake.set_gates("churn", lifecycle_steps=["approval"], aliases=["production"])
    with pytest.raises(GateError, match="lifecycle step 'approval' is not done"):
        lake.set_alias("churn", "production", 1)
    lake.set_alias("churn", "candidate", 1)  # not guarded

    # rework loop: the validator sends it back to experiments
    with acting_as("vera"):
        ready = lake.projects.complete("churn", "validation", decision="rework",
                                       deliverables={"doc:validation_report": "AUC too low"})
    assert [t.task_id for t in ready] == ["experiments"]
    assert lake.projects.get("churn").status == "in_development"
    run2 = train(lake, "churn-exp", 0.86)
    lake.register_model("churn", run_id=run2)
    with acting_as("sam"):
        lake.projects.complete("churn", "experiments", model="churn/2")
    with acting_as("vera"):
        ready = lake.projects.complete("churn", "validation", deliverables={"doc:validation_report": "AUC 0.86"})
    assert [t.task_id for t in ready] == ["approval"]
    assert lake.projects.get("churn").status == "validation"
    with pytest.raises(GateError):
        lake.set_alias("churn", "production", 2)

    # approval: only the customer's lane; the customer's own completion is the approval
    with acting_as("vera"), pytest.raises(RoleError):
        lake.projects.complete("churn", "approval")
    with acting_as("carol"):
        lake.projects.complete("churn", "approval", comment="go")
    assert lake.projects.get("churn").status == "approved"
    assert lake.set_alias("churn", "production", 2).version == 2

    with acting_as("max"):
        lake.projects.complete("churn", "packaging", model="churn@production",
                               deliverables={"link:package": "registry.example.com/churn:2"})
        lake.projects.complete("churn", "deployment", deliverables={"link:endpoint": "https://scoring/churn"})
        assert lake.projects.complete("churn", "monitoring_setup",
                                      deliverables={"link:dashboard": "https://grafana/churn"}) == []
    assert lake.projects.get("churn").status == "in_production"
    assert lake.projects.tasks("churn") == []

    # the whole history is SQL
    lake.flush()
    ev = lake.sql("SELECT event_type, actor, role, task_id, outcome, decision, deliverables FROM lakeml.project_events "
                  "ORDER BY event_seq").to_dicts()
    done = [(r["task_id"], r["actor"], r["decision"]) for r in ev if r["event_type"] == "task_completed"]
    assert done == [("problem_statement", "carol", "done"), ("data_mart", "dan", "done"),
                    ("experiments", "sam", "done"), ("validation", "vera", "rework"), ("experiments", "sam", "done"),
                    ("validation", "vera", "done"), ("approval", "carol", "done"), ("packaging", "max", "done"),
                    ("deployment", "max", "done"), ("monitoring_setup", "max", "done")]
    assert sum(r["outcome"] == "refused" for r in ev) == 3
    exp2 = [json.loads(r["deliverables"]) for r in ev if r["event_type"] == "task_completed"
            and r["task_id"] == "experiments"][-1]
    assert {"kind": "model_version", "name": "churn", "value": "2"}.items() <= exp2[0].items()
    assert exp2[1]["kind"] == "artifact" and exp2[1]["run_id"] == run2 and exp2[1]["uri"].endswith("/model")
    doc = [json.loads(r["deliverables"]) for r in ev if r["task_id"] == "data_mart"
           and r["event_type"] == "task_completed"][0][2]
    assert doc["kind"] == "doc" and lake.artifacts.read_bytes(doc["uri"]) == mart_doc.read_bytes()

    board = lake.sql("SELECT * FROM lakeml.project_board").to_dicts()
    assert len(board) == 1
    b = board[0]
    assert (b["project"], b["status"], b["current_step"], b["production_model_version"]) == \
        ("churn", "in_production", None, "models:/churn/2")
    assert b["monitoring_status"] is None  # never monitored yet
    # a monitoring window for the production version, then an alert on it
    from lakeml.clock import now_us

    t1 = now_us()
    t0 = t1 - 3_600_000_000
    lake.committer.buffer("monitoring").add(("churn", 2, "1h", t0, t1, "psi", "x1", 0.02, 100, None, "c" * 32, t1))
    lake.flush()
    assert lake.sql("SELECT monitoring_status FROM lakeml.project_board").rows() == [("ok",)]
    lake.committer.buffer("alerts").add(("a" * 32, t1, "drift", "churn", 2, "psi", "x1", ">", 0.01, 0.02, 1, t0, t1,
                                         "psi of x1 is 0.02", None))
    lake.flush()
    assert lake.sql("SELECT monitoring_status FROM lakeml.project_board").rows() == [("alerting: psi of x1 is 0.02",)]
    assert b["last_activity"] is not None and b["days_to_status"] >= 0

    html = lake.projects.weekly_summary(tmp_path / "week.html").read_text()
    assert "<h2>Time to production</h2>" in html and "churn" in html


def test_cancellation_and_board_while_running(file_lake, receiver, tmp_path):
    lake = file_lake
    lake.projects.configure_notifications(hooks_yaml(tmp_path, receiver.url))
    with acting_as("carol"):
        lake.projects.create("fraud", customer="risk", roles=ROLES)
        lake.projects.create("upsell", customer="retail", roles=ROLES)
        lake.projects.complete("upsell", "problem_statement", deliverables={"doc:problem_statement": "sell more"})
    lake.flush()
    before_cancel = datetime.now(timezone.utc)  # every table committed before this moment
    with acting_as("dan"), pytest.raises(RoleError, match="only its customer"):
        lake.projects.cancel("fraud", reason="too costly")
    with acting_as("carol"):
        p = lake.projects.cancel("fraud", reason="value below cost")
    assert (p.status, p.cancel_reason) == ("cancelled", "value below cost")
    assert receiver.events("status_changed")[-1] == {**receiver.events("status_changed")[-1],
                                                     "status": "cancelled", "status_before": "proposed"}
    with acting_as("carol"), pytest.raises(ConflictError, match="not ready"):
        lake.projects.complete("fraud", "problem_statement", deliverables={"doc:problem_statement": "x"})
    with acting_as("carol"), pytest.raises(ConflictError, match="already cancelled"):
        lake.projects.cancel("fraud", reason="again")

    board = {r["project"]: r for r in lake.projects.board().to_dicts()}
    assert board["fraud"]["status"] == "cancelled" and board["fraud"]["current_step"] is None
    assert board["upsell"]["status"] == "in_development"
    assert (board["upsell"]["current_step"], board["upsell"]["assignee"]) == ("Data mart", "dan")
    assert [r["project"] for r in lake.projects.board(customer="retail").to_dicts()] == ["upsell"]
    assert [r["project"] for r in lake.projects.board(role="data_engineer").to_dicts()] == ["upsell"]
    assert [p.name for p in lake.projects.list(status="cancelled")] == ["fraud"]
    # time travel: the board as it was before the cancellation
    then = lake.sql("SELECT project, status FROM lakeml.project_board ORDER BY project", as_of=before_cancel).rows()
    assert then == [("fraud", "proposed"), ("upsell", "in_development")]


def test_sla_idle_step_is_stuck_and_notified_once(tmp_path, receiver):
    """A step ready for 6 days with a 5-day SLA: the board says stuck; check_sla notifies it once."""
    offset = {"us": -6 * 86_400_000_000}

    def clock() -> int:
        from lakeml.clock import now_us

        return now_us() + offset["us"]

    lake = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=0.2, clock=clock)
    try:
        lake.projects.configure_notifications(hooks_yaml(tmp_path, receiver.url))
        with acting_as("carol"):
            lake.projects.create("idle", roles=ROLES)
        offset["us"] = 0
        b = lake.projects.board().to_dicts()[0]
        assert b["stuck"] is True and 5.9 < b["days_in_step"] < 6.1
        idle = lake.projects.check_sla()
        assert [t.task_id for t in idle] == ["problem_statement"]
        got = receiver.events("step_idle")
        assert len(got) == 1 and got[0]["task"] == "problem_statement" and got[0]["sla_days"] == 5.0
        assert got[0]["days_idle"] > 5.9 and got[0]["users"] == ["carol"]
        assert lake.projects.check_sla() == []  # once per task
        assert len(receiver.events("step_idle")) == 1
    finally:
        lake.close()


RACE = """
import sys, time, pathlib
import lakeml
from lakeml.errors import ConflictError
from lakeml.identity import acting_as
go = pathlib.Path(sys.argv[2])
lake = lakeml.connect(warehouse=sys.argv[1])
lake.projects.get("race")  # warm: the ledger is loaded before the start signal
while not go.exists():
    time.sleep(0.005)
try:
    with acting_as(sys.argv[3]):
        lake.projects.complete("race", "problem_statement", deliverables={"doc:problem_statement": sys.argv[3]})
except ConflictError as e:
    print("CONFLICT", e)
    sys.exit(3)
finally:
    lake.close()
print("WON")
"""


def test_two_processes_complete_the_same_task_one_wins(tmp_path):
    wh = tmp_path / "wh"
    with lakeml.connect(warehouse=wh) as lake:
        with acting_as("carol"):
            lake.projects.create("race", roles={"customer": ["carol", "cora"]})
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(wh), str(go), user], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for user in ("carol", "cora")]
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 3], outs
    loser = next(o for p, o in zip(procs, outs) if p.returncode == 3)[0]
    assert "task 'problem_statement' of project 'race'" in loser
    with lakeml.connect(warehouse=wh) as lake:
        ev = lake.projects.events("race")
        done = [e for e in ev if e["event_type"] == "task_completed"]
        assert len(done) == 1
        winner = next(o for p, o in zip(procs, outs) if p.returncode == 0)
        assert "WON" in winner[0]
        assert [t.task_id for t in lake.projects.tasks("race")] == ["data_mart"]
        assert [e["event_seq"] for e in ev] == list(range(1, len(ev) + 1))  # gap-free, one total order


def test_http_routes_use_token_roles(file_lake):
    from fastapi.testclient import TestClient

    from lakeml.server.app import create_app
    from lakeml.server.auth import TokenStore

    lake = file_lake
    store = TokenStore(lake.store)
    _, cust = store.create("carol", "write", roles=["customer"])
    _, sci = store.create("sam", "write", roles=["data_scientist"])
    _, reader = store.create("rita", "read")
    client = TestClient(create_app(lake))

    def h(tok):
        return {"Authorization": f"Bearer {tok}"}

    r = client.post("/api/v1/projects", json={"name": "web", "customer": "online"}, headers=h(cust))
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/projects", headers=h(reader)).json()["projects"][0]["name"] == "web"
    url = "/api/v1/projects/web/tasks/problem_statement/complete"
    r = client.post(url, json={"deliverables": {"doc:problem_statement": "x"}}, headers=h(reader))
    assert r.status_code == 403  # scope read
    r = client.post(url, json={"deliverables": {"doc:problem_statement": "x"}}, headers=h(sci))
    assert r.status_code == 403 and "role 'customer'" in r.json()["error"]["message"]
    r = client.post(url, json={}, headers=h(cust))
    assert r.status_code == 400 and "doc:problem_statement" in r.json()["error"]["message"]
    r = client.post(url, json={"deliverables": {"doc:problem_statement": "x"}}, headers=h(cust))
    assert r.status_code == 200 and [t["task_id"] for t in r.json()["ready"]] == ["data_mart"]
    r = client.post(url, json={"deliverables": {"doc:problem_statement": "x"}}, headers=h(cust))
    assert r.status_code == 409
    show = client.get("/api/v1/projects/web", headers=h(reader)).json()
    assert show["project"]["status"] == "in_development"
    assert [e["actor"] for e in show["events"] if e["event_type"] == "task_completed"] == ["carol"]
    board = client.get("/api/v1/project_board", headers=h(reader)).json()["board"]
    assert board[0]["current_task"] == "data_mart"
    mine = client.get("/api/v1/projects/web/tasks?mine=true", headers=h(sci)).json()["tasks"]
    assert mine == []


def test_webhook_config_errors_are_clear(tmp_path, file_lake):
    bad = tmp_path / "bad.yaml"
    bad.write_text("webhooks:\n  - url: ftp://x\n")
    with pytest.raises(lakeml.errors.ConfigError, match=r"webhooks\[0\] needs a url"):
        file_lake.projects.configure_notifications(bad)
    bad.write_text("webhooks:\n  - url: http://x\n    events: [task_done]\n")
    with pytest.raises(lakeml.errors.ConfigError, match="unknown event"):
        file_lake.projects.configure_notifications(bad)
