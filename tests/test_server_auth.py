"""Tokens of ``lakeml server``: created by the CLI, stored hashed in Iceberg, honoured by a running server
without a restart; 401 for a missing or bad token, 403 for too small a scope; writes record the token's name."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import httpx
import pytest
from fastapi import APIRouter, Depends, Request

import lakeml
from lakeml.errors import ConfigError, ConflictError, InvalidInputError, NotFoundError
from lakeml.server.app import create_app
from lakeml.server.auth import TABLE, TokenAuth, TokenStore, hash_secret, parse_token
from lakeml.server.deps import Principal, lake_of, require
from lakeml.server.run import check_bind
from lakeml.server.settings import ServerSettings
from tests.servers import LakemlServer


def cli(*args: str, warehouse):
    """``lakeml server token ARGS --warehouse W``, in-process (typer's CliRunner): exit_code, stdout, stderr."""
    from typer.testing import CliRunner

    from lakeml.cli.main import app

    return CliRunner().invoke(app, ["server", "token", *args, "--warehouse", str(warehouse)], catch_exceptions=False)


def create_token(warehouse, name: str, scope: str, *roles: str) -> str:
    args = ["create", "--name", name, "--scope", scope, "-o", "json"]
    for r in roles:
        args += ["--role", r]
    out = cli(*args, warehouse=warehouse)
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def os_user() -> str:
    import getpass

    return getpass.getuser()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("auth")
    srv = LakemlServer(base / "wh", base_dir=base)
    yield srv
    srv.stop()


def test_tokens_from_the_cli_work_on_a_running_server(server):
    """The whole flow on one real server: anonymous admin without tokens, then CLI-made tokens count at once."""
    url, wh = server.url, server.warehouse
    with httpx.Client(base_url=url, timeout=30) as c:
        # no tokens on loopback: everyone is an admin named after the OS user
        r = c.get("/api/v1/server/whoami")
        assert r.status_code == 200 and r.json()["scope"] == "admin" and r.json()["name"] == os_user()

        ci = create_token(wh, "ci", "write", "data_scientist")
        assert parse_token(ci) is not None
        r = c.get("/api/v1/server/whoami", headers=bearer(ci))  # no restart needed
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "ci", "scope": "write", "roles": ["data_scientist"],
                            "token_id": parse_token(ci)[0]}

        # now a token exists: no token, a bad token, a malformed header -> 401 JSON naming the field
        r = c.get("/api/v1/server/whoami")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "UNAUTHENTICATED" and r.json()["error"]["field"] == "Authorization"
        assert "lakeml server token create" in r.json()["error"]["message"]
        assert r.headers["www-authenticate"].startswith("Bearer")
        tid, secret = parse_token(ci)
        for bad in ("nope", f"lkml_{tid}_{'0' * 48}", ci + "x", f"lkml_{'f' * 12}_{secret}"):
            r = c.get("/api/v1/server/whoami", headers=bearer(bad))
            assert r.status_code == 401, bad
        assert c.get("/api/v1/server/whoami", headers={"Authorization": "Basic !!!"}).status_code == 401
        # MLflow's routes answer MLflow's error shape
        r = c.post("/api/2.0/mlflow/experiments/search", json={})
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"

        # the three ways to carry a token
        basic = base64.b64encode(f"anyone:{ci}".encode()).decode()
        assert c.get("/api/v1/server/whoami", headers={"Authorization": f"Basic {basic}"}).json()["name"] == "ci"
        assert c.get("/api/v1/server/whoami", headers={"Cookie": f"lakeml_token={ci}"}).json()["name"] == "ci"
        # /health needs none
        assert c.get("/health").status_code == 200

        # writes through the real APIs record the token's name (MLflow clients also send a user_id: ignored)
        r = c.post("/api/2.0/mlflow/runs/create", headers=bearer(ci),
                   json={"experiment_id": "0", "user_id": "someone-else", "start_time": int(time.time() * 1000)})
        assert r.status_code == 200, r.text
        run_id = r.json()["run"]["info"]["run_id"]
        r = c.post("/api/2.0/mlflow/registered-models/create", headers=bearer(ci), json={"name": "auth-flow"})
        assert r.status_code == 200, r.text
        assert c.post("/api/v1/server/flush", headers=bearer(ci)).status_code == 200
        r = c.post("/api/v1/sql", headers=bearer(ci), json={
            "sql": "SELECT (SELECT list(DISTINCT user) FROM lakeml.runs WHERE run_id = $1), "
                   "(SELECT list(DISTINCT actor) FROM lakeml.registry_events WHERE model_name = 'auth-flow')",
            "params": [run_id]})
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [[["ci"], ["ci"]]]

        # scopes: read < write < admin
        reader = create_token(wh, "dashboards", "read")
        admin = create_token(wh, "ops", "admin")
        r = c.post("/api/v1/server/flush", headers=bearer(reader))
        assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
        assert "'read'" in r.json()["error"]["message"] and "'write'" in r.json()["error"]["message"]
        assert c.post("/api/v1/server/flush", headers=bearer(ci)).status_code == 200
        assert c.get("/metrics", headers=bearer(reader)).status_code == 200
        assert c.get("/api/v1/server/tokens", headers=bearer(ci)).status_code == 403
        r = c.get("/api/v1/server/tokens", headers=bearer(admin))
        assert r.status_code == 200
        assert {t["name"] for t in r.json()["tokens"]} == {"ci", "dashboards", "ops"}
        for t in (ci, reader, admin):  # neither tokens nor their hashes are ever listed
            assert parse_token(t)[1] not in r.text and hash_secret(parse_token(t)[1]) not in r.text

        # revoked by the CLI: refused within seconds, without a restart (poll with a deadline)
        out = cli("revoke", "dashboards", warehouse=wh)
        assert out.exit_code == 0, out.stderr
        deadline = time.monotonic() + 20
        while c.get("/metrics", headers=bearer(reader)).status_code != 401:
            assert time.monotonic() < deadline, "a revoked token was still accepted after 20 s"
            time.sleep(0.2)

        # an admin can create and revoke over HTTP too; the answer holds the token once
        r = c.post("/api/v1/server/tokens", headers=bearer(admin), json={"name": "nb", "scope": "read"})
        assert r.status_code == 201, r.text
        nb = r.json()["token"]
        assert r.json()["created_by"] == "ops"
        assert c.get("/api/v1/server/whoami", headers=bearer(nb)).json()["name"] == "nb"
        r = c.post("/api/v1/server/tokens", headers=bearer(admin), json={"name": "nb", "scope": "read"})
        assert r.status_code == 409 and "already exists" in r.json()["error"]["message"]
        r = c.post("/api/v1/server/tokens", headers=bearer(admin), json={"name": "a b", "scope": "read"})
        assert r.status_code == 400 and "token name" in r.json()["error"]["message"]
        assert c.delete("/api/v1/server/tokens/nb", headers=bearer(admin)).status_code == 200
        assert c.get("/api/v1/server/whoami", headers=bearer(nb)).status_code == 401


def test_cli_list_revoke_and_bad_input(tmp_path):
    wh = tmp_path / "wh"
    token = create_token(wh, "ci", "write", "approver", "data_scientist")
    out = cli("list", warehouse=wh)
    assert out.exit_code == 0 and "ci" in out.stdout and "approver, data_scientist" in out.stdout
    assert parse_token(token)[1] not in out.stdout and hash_secret(parse_token(token)[1]) not in out.stdout
    rows = json.loads(cli("list", "-o", "json", warehouse=wh).stdout)
    assert [r["name"] for r in rows] == ["ci"] and "secret_sha256" not in rows[0]

    dup = cli("create", "--name", "ci", "--scope", "read", warehouse=wh)
    assert dup.exit_code == 1 and "already exists" in dup.stderr and "revoke" in dup.stderr
    assert dup.stderr.count("\n") == 1  # one line, no traceback
    bad = cli("create", "--name", "../x", warehouse=wh)
    assert bad.exit_code == 1 and "token name" in bad.stderr
    bad = cli("create", "--name", "x", "--scope", "root", warehouse=wh)
    assert bad.exit_code == 1 and "read, write or admin" in bad.stderr
    missing = cli("revoke", "nobody", warehouse=wh)
    assert missing.exit_code == 1
    assert "no live token named 'nobody'" in missing.stderr and "in use: ci" in missing.stderr

    assert cli("revoke", "ci", warehouse=wh).exit_code == 0
    assert json.loads(cli("list", "-o", "json", warehouse=wh).stdout) == []
    every = json.loads(cli("list", "--all", "-o", "json", warehouse=wh).stdout)
    assert every[0]["revoked_at"] is not None
    # the name is free again
    assert parse_token(create_token(wh, "ci", "read")) is not None


def test_table_holds_only_hashes_and_is_readable_with_pyiceberg(tmp_path):
    with lakeml.connect(warehouse=tmp_path / "wh") as lake:
        info, token = TokenStore(lake.store).create("ci", "write", roles=["data_scientist"], created_by="me")
        ident = lake.store.identifier(TABLE)  # read with plain pyiceberg, as another engine would
        rows = lake.store.catalog.load_table(ident).scan().to_arrow().to_pylist()
    assert len(rows) == 1
    row = rows[0]
    secret = parse_token(token)[1]
    assert row["secret_sha256"] == hash_secret(secret) and secret not in json.dumps(row, default=str)
    assert row["name"] == "ci" and row["scope"] == "write" and row["roles"] == ["data_scientist"]
    assert row["created_by"] == "me" and row["event_type"] == "created"


def test_token_store_rules(tmp_path):
    with lakeml.connect(warehouse=tmp_path / "wh") as lake:
        store = TokenStore(lake.store)
        with pytest.raises(InvalidInputError, match="token name"):
            store.create("", "read")
        with pytest.raises(InvalidInputError, match="scope"):
            store.create("x", "superuser")
        with pytest.raises(InvalidInputError, match="role"):
            store.create("x", "read", roles=["not ok"])
        with pytest.raises(NotFoundError):
            store.revoke("x")


def test_concurrent_creates_of_one_name_leave_one_live_token(tmp_path):
    """Creation is compare-and-swap: two writers racing for the same name cannot both win."""
    wh = tmp_path / "wh"
    lakes = [lakeml.connect(warehouse=wh) for _ in range(2)]
    TokenStore(lakes[0].store).list()  # the table exists before the race
    results: list = []
    barrier = threading.Barrier(2)

    def create(lake):
        barrier.wait()
        try:
            results.append(TokenStore(lake.store).create("ci", "write"))
        except ConflictError as e:
            results.append(e)

    threads = [threading.Thread(target=create, args=(lk,)) for lk in lakes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sum(isinstance(r, ConflictError) for r in results) == 1, results
        assert [t.name for t in TokenStore(lakes[0].store).list()] == ["ci"]
    finally:
        for lk in lakes:
            lk.close()


def test_refusing_a_public_bind_without_tokens(tmp_path):
    wh = tmp_path / "wh"
    from typer.testing import CliRunner

    from lakeml.cli.main import app

    out = CliRunner().invoke(app, ["server", "--host", "0.0.0.0", "--port", "1", "--warehouse", str(wh)])
    assert out.exit_code == 1
    assert "refusing to serve on 0.0.0.0 with no token configured, since anyone" in out.stderr and "--insecure" in out.stderr
    assert out.stderr.count("\n") == 1
    with lakeml.connect(warehouse=wh) as lake:
        # --insecure: allowed, anonymous until a token exists
        auth = check_bind(lake, ServerSettings(host="0.0.0.0", insecure=True))
        assert not auth.required and auth.authenticate(None).scope == "admin"
        with pytest.raises(ConfigError, match="refusing"):
            check_bind(lake, ServerSettings(host="10.1.2.3"))
        TokenStore(lake.store).create("ci", "write")
        auth = check_bind(lake, ServerSettings(host="0.0.0.0"))  # tokens exist: fine, and required
        assert auth.required


# -- the acting user: in-process app with routes that write, run in the threadpool -----------------
writes = APIRouter()


@writes.post("/test/run")
def _create_run(request: Request, p: Principal = Depends(require("write"))) -> dict:
    lake = lake_of(request)
    run = lake.create_run("auth-test", run_name="r")
    lake.log_metric(run.run_id, "m", 1.0)
    return {"run_id": run.run_id}


@writes.post("/test/model")
def _create_model(request: Request, p: Principal = Depends(require("write"))) -> dict:
    lake_of(request).create_model("auth-model")
    return {"ok": True}


def test_writes_record_the_token_name_as_user(file_lake):
    info, token = TokenStore(file_lake.store).create("ci", "write")
    app = create_app(file_lake, ServerSettings())
    app.include_router(writes)

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r1 = await c.post("/test/run", headers=bearer(token))
            r2 = await c.post("/test/model", headers=bearer(token))
            r3 = await c.post("/test/run")
            return r1, r2, r3

    r1, r2, r3 = asyncio.run(go())
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    assert r3.status_code == 401
    file_lake.flush()
    users = file_lake.sql("SELECT DISTINCT user FROM lakeml.runs WHERE run_id = $1", params=[r1.json()["run_id"]])
    assert users["user"].to_list() == ["ci"]
    actors = file_lake.sql("SELECT actor FROM lakeml.registry_events WHERE model_name = 'auth-model'")
    assert actors["actor"].to_list() == ["ci"]
    # and the process's own identity is untouched outside requests
    from lakeml.identity import acting_user

    assert acting_user() is None


def test_token_auth_unit_rules(file_lake):
    """TokenAuth without the HTTP layer: forced modes and the refresh of unknown tokens."""
    store = TokenStore(file_lake.store)
    auth = TokenAuth(store)  # loopback, no tokens: anonymous admin
    assert not auth.required and auth.authenticate(None).scope == "admin"
    assert TokenAuth(store, loopback=False).required  # public bind: required even without tokens
    _, token = store.create("late", "read")
    p = auth.authenticate(token)  # unknown id -> one reload -> known
    assert p.name == "late" and p.scope == "read" and auth.required
    from lakeml.server.errors import ApiError

    with pytest.raises(ApiError) as e:
        auth.authenticate(None)
    assert e.value.status == 401
    assert TokenAuth(store, required=False).authenticate(None).scope == "admin"


def test_lazy_token_load_and_failing_closed(file_lake):
    """A lazily started server reads its tokens on the first request; if it cannot, it answers 503 and
    never lets anyone in anonymously."""
    from lakeml.server.errors import ApiError

    store = TokenStore(file_lake.store)
    _, token = store.create("ci", "write")
    auth = TokenAuth(store, lazy=True)
    assert not auth.loaded and auth.required  # unknown yet: closed
    with pytest.raises(ApiError) as e:
        auth.authenticate(None)  # reads the tokens, finds one: a token is needed
    assert e.value.status == 401 and auth.loaded
    assert auth.authenticate(token).name == "ci"

    down = lakeml.connect("down", type="rest", uri="http://127.0.0.1:9", warehouse="s3://nowhere/wh")
    try:
        broken = TokenAuth(TokenStore(down.store), lazy=True)
        for cred in (None, token):
            with pytest.raises(ApiError) as e:
                broken.authenticate(cred)
            assert e.value.status == 503 and "cannot read its tokens" in e.value.message
        assert broken.required
    finally:
        down.close()


class CountingTokenStore(TokenStore):
    """The real store, counting how often the tokens are read."""

    loads = 0

    def live(self):
        self.loads += 1
        return super().live()


def test_unknown_tokens_do_not_reload_without_end(file_lake):
    store = CountingTokenStore(file_lake.store)
    _, token = store.create("ci", "read")
    auth = TokenAuth(store, refresh_seconds=3600)  # no background reloads in this test
    assert store.loads == 1
    from lakeml.server.errors import ApiError

    made_up = f"lkml_{'a' * 12}_{'b' * 48}"
    for _ in range(5):  # the same unknown id: one reload, then refused from memory
        with pytest.raises(ApiError):
            auth.authenticate(made_up)
    assert store.loads == 2
    for bad in ("garbage", "lkml_x_y", ""):  # malformed: never a reload
        with pytest.raises(ApiError):
            auth.authenticate(bad)
    assert store.loads == 2
    _, late = store.create("late", "write")  # a new token: one reload finds it
    assert auth.authenticate(late).name == "late" and store.loads == 3
    assert auth.authenticate(token).name == "ci" and store.loads == 3
