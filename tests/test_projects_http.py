"""Model projects over HTTP against a real ``lakeml server`` subprocess whose tokens carry lifecycle roles
(made with the real ``lakeml server token create --role ...`` command): a user completes the tasks of
their own lane and gets 403 for another lane's; read-only and missing tokens are refused; every
transition is recorded with the token's user. What the server recorded is read back by a separate Lake
over the same warehouse."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

import lakeml
from lakeml.cli.main import app

USERS = {"carol": ("write", ["customer"]), "dan": ("write", ["data_engineer"]), "sam": ("write", ["data_scientist"]),
         "rita": ("read", [])}
MART = {"link:mart_code": "git@example.com:mart.git", "link:mart": "shop.features", "doc:mart": "one row per customer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.servers import LakemlServer

    base = tmp_path_factory.mktemp("projects_http")
    wh = base / "wh"
    tokens = {}
    for name, (scope, roles) in USERS.items():
        args = ["server", "token", "create", "--name", name, "--scope", scope, "-o", "json", "--warehouse", str(wh)]
        for r in roles:
            args += ["--role", r]
        res = CliRunner().invoke(app, args, catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
        info = json.loads(res.stdout)
        assert info["roles"] == roles and info["scope"] == scope
        tokens[name] = info["token"]
    srv = LakemlServer(wh, base_dir=base)
    srv.tokens, srv.wh = tokens, wh
    yield srv
    srv.stop()


def _client(server, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"} if user else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def _complete(server, user: str | None, project: str, task: str, deliverables: dict) -> httpx.Response:
    with _client(server, user) as c:
        return c.post(f"/api/v1/projects/{project}/tasks/{task}/complete", json={"deliverables": deliverables})


def test_tokens_roles_decide_who_completes_which_lane(server):
    with _client(server, "carol") as c:
        r = c.post("/api/v1/projects", json={"name": "web", "customer": "online",
                                             "roles": {"customer": ["carol"], "data_engineer": ["dan"],
                                                       "data_scientist": ["sam"]}})
        assert r.status_code == 200, r.text
        assert r.json()["project"]["created_by"] == "carol"

    statement = {"doc:problem_statement": "visitors leave the shop"}
    # another lane: a data scientist may not write the customer's problem statement
    r = _complete(server, "sam", "web", "problem_statement", statement)
    assert r.status_code == 403, r.text
    msg = r.json()["error"]["message"]
    assert "role 'customer'" in msg and "'sam'" in msg and "data_scientist" in msg
    # read scope and no token at all are refused before any lane is looked at
    assert _complete(server, "rita", "web", "problem_statement", statement).status_code == 403
    assert _complete(server, None, "web", "problem_statement", statement).status_code == 401
    # own lane: done, and the next lane's task is ready
    r = _complete(server, "carol", "web", "problem_statement", statement)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_development" and [t["task_id"] for t in r.json()["ready"]] == ["data_mart"]
    # the data mart belongs to the data engineer: the customer and the scientist get 403, the engineer 200
    assert _complete(server, "carol", "web", "data_mart", MART).status_code == 403
    assert _complete(server, "sam", "web", "data_mart", MART).status_code == 403
    r = _complete(server, "dan", "web", "data_mart", {"link:mart_code": MART["link:mart_code"]})
    assert r.status_code == 400 and "link:mart" in r.json()["error"]["message"]  # own lane, deliverables missing
    r = _complete(server, "dan", "web", "data_mart", MART)
    assert r.status_code == 200, r.text
    assert [t["task_id"] for t in r.json()["ready"]] == ["experiments"]

    # "mine" follows the token's roles
    with _client(server, "sam") as c:
        mine = c.get("/api/v1/projects/web/tasks", params={"mine": "true"}).json()["tasks"]
    assert [t["task_id"] for t in mine] == ["experiments"]
    with _client(server, "dan") as c:
        assert c.get("/api/v1/projects/web/tasks", params={"mine": "true"}).json()["tasks"] == []
    with _client(server, "rita") as c:
        board = c.get("/api/v1/project_board").json()["board"]
    assert [(b["project"], b["status"], b["current_task"]) for b in board] == [("web", "in_development", "experiments")]

    # what the server recorded, read by another process's view of the lake: who, in which role, refusals too
    reader = lakeml.connect(warehouse=str(server.wh))
    try:
        ev = reader.projects.events("web")
    finally:
        reader.close()
    done = [(e["task_id"], e["actor"], e["role"]) for e in ev if e["event_type"] == "task_completed"]
    assert done == [("problem_statement", "carol", "customer"), ("data_mart", "dan", "data_engineer")]
    refused = [(e["task_id"], e["actor"]) for e in ev if e["event_type"] == "task_refused"]
    assert refused == [("data_mart", "dan")]  # role refusals (403) record nothing; a missing deliverable does
