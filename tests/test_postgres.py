"""The storage matrix on pyiceberg's SQL catalog in a real PostgreSQL (tests/servers.py).

A team runs the catalog on PostgreSQL (README, "Configuration"). Each write path is run here on
it, reusing the file/S3 tests' own bodies: concurrent metric writers (8 processes), registry
compare-and-swap, maintenance while writers append, SIGKILL recovery and the lakehouse join.
Each test gets a fresh database on one server per session; the warehouse is a local folder.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import lakeml
import tests.test_lakehouse_join as join
import tests.test_maintenance as maintenance
import tests.test_recovery as recovery
import tests.test_registry_concurrency as registry
from lakeml import RunStatus
from tests.conftest import postgres_lake_kwargs
from tests.servers import PostgresServer
from tests.test_concurrency import _check, _plain_read, _run_writers
from tests.workers.lakes import lake_spec

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parent.parent
on_postgres = pytest.mark.parametrize("lake", ["pg"], indirect=True)
features = join.features  # the fixture, here made on the PostgreSQL lake


@pytest.fixture
def pg_lake(postgres_db, tmp_path):
    """A lake whose SQL catalog is a fresh PostgreSQL database; the warehouse is a local folder."""
    lake = lakeml.connect(commit_interval=0.2, commit_deadline=60, **postgres_lake_kwargs(postgres_db, tmp_path))
    yield lake
    lake.close()


def test_server_runs_unprivileged_with_its_socket_in_its_folder(postgres_server):
    owner = os.stat(f"/proc/{postgres_server.pid}").st_uid
    assert owner != 0 and (os.geteuid() != 0 or owner == pwd.getpwnam("postgres").pw_uid)
    assert (postgres_server.dir / f".s.PGSQL.{postgres_server.port}").is_socket()
    assert postgres_server.psql("SHOW listen_addresses").strip() == "127.0.0.1"


def test_a_server_needs_its_password_and_stops_by_pid():
    import psycopg2

    server = PostgresServer()
    pid, folder = server.pid, server.dir
    try:
        uri = server.create_database("only_for_this_test")
        conn = psycopg2.connect(host=server.host, port=server.port, user=server.user, password=server.password,
                                dbname="only_for_this_test")
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(host=server.host, port=server.port, user=server.user, password="wrong",
                             dbname="only_for_this_test")
        assert uri.endswith(f"@127.0.0.1:{server.port}/only_for_this_test")
        with pytest.raises(ValueError, match="database name"):
            server.create_database("bad-name; DROP")
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not Path(f"/proc/{pid}").exists() and not folder.exists()


def test_the_catalog_rows_are_in_postgres(pg_lake, postgres_server):
    run = pg_lake.create_run("pg", run_name="first")
    pg_lake.log_metric(run.run_id, "loss", 0.5, step=0)
    pg_lake.flush()
    db = pg_lake.config.properties["uri"].rsplit("/", 1)[1]
    rows = postgres_server.psql("SELECT table_namespace, table_name FROM iceberg_tables ORDER BY 2", db)
    assert "lakeml|metrics" in rows.splitlines() and "lakeml|runs" in rows.splitlines()
    assert pg_lake.get_metric_history(run.run_id, "loss")["value"].to_list() == [0.5]


def test_eight_writer_processes_into_one_postgres_lake(pg_lake):
    procs, points = 8, 20_000
    pg_lake.init()
    spec = lake_spec(pg_lake)
    runs = _run_writers(spec, procs, points)
    _check(_plain_read(spec), runs, points)  # pyiceberg alone, in its own process
    df = pg_lake.search_runs("concurrency")
    assert df.height == procs and set(df["status"].to_list()) == {RunStatus.FINISHED.value}


def test_writers_racing_to_create_the_tables_on_postgres(postgres_db, tmp_path):
    """An empty database: four processes create the namespace and the tables at the same moment."""
    procs, points = 4, 5_000
    spec = {"properties": postgres_lake_kwargs(postgres_db, tmp_path), "catalog_name": "lakeml"}
    runs = _run_writers(spec, procs, points)
    _check(_plain_read(spec), runs, points)


def test_concurrent_registration_on_postgres(pg_lake, tmp_path):
    versions, _ = registry.run_workers(pg_lake, tmp_path, procs=4, each=6, alias_every=2)
    registry.check(pg_lake, versions, 24)


def test_maintenance_while_four_writer_processes_append_on_postgres(pg_lake, py):
    maintenance.test_maintenance_while_four_writer_processes_append(pg_lake, py)


@on_postgres
def test_sigkill_mid_run_then_recovery_on_postgres(lake, tmp_path, py):
    assert lake.config.properties["uri"].startswith("postgresql+psycopg2://")
    recovery.test_sigkill_mid_run_then_recovery_on_connect(lake, tmp_path, py)


@on_postgres
def test_lakehouse_join_on_postgres(lake, features):
    join.test_runs_on_two_snapshots_and_the_rows_that_changed(lake, features)


# --- the team profile of the README: PostgreSQL catalog + S3 warehouse (SeaweedFS) + artifacts ---

README = ROOT / "README.md"
PLAIN_READER = r"""
import json, sys
from pyiceberg.catalog import load_catalog
cat = load_catalog("minio")  # the same PYICEBERG_CATALOG__MINIO__* variables, pyiceberg alone
out = {t: cat.load_table(f"lakeml.{t}").scan().to_arrow().to_pylist()
       for t in ("runs", "params", "metrics", "artifacts", "model_versions")}
assert not any(m == "lakeml" or m.startswith("lakeml.") for m in sys.modules), "the reader imported lakeml"
print(json.dumps(out, default=str))
"""


def readme_team_exports() -> dict[str, str]:
    """``export NAME=value`` lines of the README's team set-up block (section "Configuration")."""
    text = README.read_text().split("## Configuration: where the data goes", 1)[1].split("\n## ", 1)[0]
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    exports = dict(line[len("export "):].split("=", 1) for line in block.splitlines() if line.startswith("export "))
    assert "lakeml doctor" in block and "pip install 'lakeml[postgres]'" in text
    return exports


@pytest.mark.seaweedfs
def test_team_profile_postgres_catalog_s3_warehouse_and_artifacts(postgres_db, seaweed_server, monkeypatch,
                                                                  tmp_path):
    from sklearn.linear_model import LogisticRegression

    bucket = seaweed_server.create_bucket(f"ml-lake-{uuid.uuid4().hex[:12]}")
    readme = readme_team_exports()
    # the README's variables, each given this test's live value; the README names no other one
    live = {"LAKEML_CATALOG": "minio",
            "PYICEBERG_CATALOG__MINIO__TYPE": "sql",
            "PYICEBERG_CATALOG__MINIO__URI": postgres_db,
            "PYICEBERG_CATALOG__MINIO__WAREHOUSE": f"s3://{bucket}/warehouse",
            "PYICEBERG_CATALOG__MINIO__S3__ENDPOINT": seaweed_server.s3_endpoint,
            "PYICEBERG_CATALOG__MINIO__S3__ACCESS_KEY_ID": seaweed_server.access_key,
            "PYICEBERG_CATALOG__MINIO__S3__SECRET_ACCESS_KEY": seaweed_server.secret_key,
            "PYICEBERG_CATALOG__MINIO__S3__REGION": "us-east-1",
            "PYICEBERG_CATALOG__MINIO__S3__PATH_STYLE_ACCESS": "true"}
    assert set(readme) == set(live)
    assert re.search(r'^postgres = \[.*"psycopg2-binary', (ROOT / "pyproject.toml").read_text(), re.M)  # the extra
    assert readme["PYICEBERG_CATALOG__MINIO__TYPE"] == "sql"
    assert readme["PYICEBERG_CATALOG__MINIO__URI"].startswith("postgresql+psycopg2://")
    assert readme["PYICEBERG_CATALOG__MINIO__WAREHOUSE"].startswith("s3://")
    for k, v in live.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("LAKEML_WAREHOUSE", raising=False)
    monkeypatch.delenv("LAKEML_LOG_LEVEL", raising=False)

    # log, register and query through SQL with the profile alone
    model = tmp_path / "notes.txt"
    model.write_text("trained on the churn features\n")
    with lakeml.connect(commit_interval=0.2, commit_deadline=60) as lake:
        assert lake.config.properties["uri"] == postgres_db
        run = lake.create_run("churn", run_name="team-run")
        lake.log_params(run.run_id, {"lr": 0.1, "depth": 6})
        for step in range(500):
            lake.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
        lake.log_artifact(run.run_id, str(model))
        lake.log_model(run.run_id, LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
        lake.set_terminated(run.run_id, "FINISHED")
        mv = lake.register_model("churn", run_id=run.run_id, artifact_path="model")
        assert mv.version == 1
        got = lake.sql("SELECT r.run_name, p.value AS lr, m.value AS loss, v.version "
                       "FROM lakeml.runs_latest r JOIN lakeml.params_latest p USING (run_id) "
                       "JOIN lakeml.metric_latest m USING (run_id) "
                       "JOIN lakeml.model_versions v ON v.run_id = r.run_id "
                       "WHERE p.key = 'lr' AND m.key = 'loss'").to_dicts()
        assert got == [{"run_name": "team-run", "lr": "0.1", "loss": 1.0 / 500, "version": 1}]
        out = lake.download_artifacts(run.run_id, "notes.txt", tmp_path / "dl")
        assert open(out).read() == model.read_text()
    keys = [o["Key"] for o in seaweed_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("warehouse/lakeml-artifacts/") and k.endswith("/notes.txt") for k in keys)
    assert any(k.startswith("warehouse/lakeml/metrics/data/") for k in keys)  # tables live in the bucket

    env = {**os.environ, **live}
    # the README's check, as a user runs it: it passes and prints nothing to stderr
    doctor = subprocess.run([sys.executable, "-m", "lakeml", "doctor"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert doctor.returncode == 0, doctor.stdout[-3000:] + doctor.stderr[-3000:]
    assert doctor.stderr == ""
    assert "postgresql+psycopg2://lakeml:" in doctor.stdout and "lakeml-secret" not in doctor.stdout  # masked
    assert "commit retries" in doctor.stdout

    # a second process reads every table back with plain pyiceberg
    plain = subprocess.run([sys.executable, "-c", PLAIN_READER], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=300)
    assert plain.returncode == 0, plain.stderr[-3000:]
    tables = json.loads(plain.stdout)
    assert sorted(r["step"] for r in tables["metrics"]) == list(range(500))
    assert {(r["key"], r["value"]) for r in tables["params"]} == {("lr", "0.1"), ("depth", "6")}
    assert "FINISHED" in {r["status"] for r in tables["runs"] if r["run_id"] == run.run_id}
    assert {a["path"] for a in tables["artifacts"]} >= {"notes.txt"}
    versions = {(v["model_name"], v["version"], v["run_id"]) for v in tables["model_versions"]}
    assert versions == {("churn", 1, run.run_id)}
