"""lake.sql is read-only by default, and its errors say what to do."""

from __future__ import annotations

import pytest

import lakeml
from lakeml.errors import MissingDependencyError, QueryError, ReadOnlyError
from lakeml.query import extensions


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """One lake shared by the tests of this module (they only read, or are refused)."""
    lake = lakeml.connect(warehouse=tmp_path_factory.mktemp("guard") / "wh", commit_interval=0.2)
    r = lake.create_run("e", run_name="r")
    lake.log_metric(r.run_id, "auc", 0.5)
    lake.set_terminated(r.run_id)
    yield lake
    lake.close()


@pytest.mark.parametrize("query, word", [
    ("COPY (SELECT * FROM lakeml.runs) TO '{tmp}/x.csv'", "COPY"),
    ("ATTACH '{tmp}/other.duckdb' AS other", "ATTACH"),
    ("INSTALL spatial", "INSTALL"),
    ("LOAD spatial", "LOAD"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("CREATE OR REPLACE VIEW lakeml.runs AS SELECT 1", "CREATE"),
    ("DROP VIEW lakeml.runs", "DROP"),
    ("INSERT INTO lakeml.runs SELECT * FROM lakeml.runs", "INSERT"),
    ("SET enable_external_access = true", "SET"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp}/y.csv'", "COPY"),
    ("SELECT 1; COPY (SELECT 1) TO '{tmp}/z.csv'", "COPY"),
])
def test_writes_are_refused(one_run, tmp_path, query, word):
    with pytest.raises(ReadOnlyError) as e:
        one_run.sql(query.format(tmp=tmp_path))
    msg = str(e.value)
    assert word in msg and "read_write=True" in msg
    assert not list(tmp_path.glob("*.csv")) and not (tmp_path / "other.duckdb").exists()
    assert one_run.sql("SELECT count(*) FROM lakeml.runs_latest").item() == 1  # the views are intact


def test_files_outside_the_warehouse_are_refused(one_run, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for q in (f"SELECT * FROM read_csv('{secret}')", "SELECT * FROM read_text('/etc/hostname')",
              f"SELECT * FROM '{secret}'"):
        with pytest.raises(ReadOnlyError, match="read-only"):
            one_run.sql(q)


def test_reads_inside_the_warehouse_work(one_run):
    wh = one_run.config.warehouse_dir
    n = one_run.sql(f"SELECT count(*) FROM read_parquet('{wh}/lakeml/runs/data/*.parquet')").item()
    assert n == 2  # RUNNING and FINISHED events


def test_read_write_session_allows_copy(one_run, tmp_path):
    out = tmp_path / "runs.csv"
    one_run.sql(f"COPY (SELECT run_name FROM lakeml.runs_latest) TO '{out}' (HEADER)", read_write=True)
    assert out.read_text().splitlines() == ["run_name", "r"]
    assert one_run.sql("SELECT count(*) FROM lakeml.runs_latest").item() == 1


def test_query_kinds_that_only_read_pass(one_run):
    assert one_run.sql("DESCRIBE lakeml.runs").height > 10
    assert one_run.sql("SUMMARIZE lakeml.metrics").height == 5
    assert one_run.sql("FROM lakeml.metric_latest SELECT key").item() == "auc"
    assert one_run.sql("WITH x AS (SELECT 2 AS v) SELECT v * 21 AS v FROM x").item() == 42
    assert one_run.sql("EXPLAIN SELECT * FROM lakeml.runs").height >= 1
    assert one_run.sql("SHOW ALL TABLES").height > 10


def test_syntax_error(one_run):
    with pytest.raises(QueryError, match="SQL syntax error") as e:
        one_run.sql("SELEC * FROM lakeml.runs")
    assert "SELEC" in str(e.value)
    with pytest.raises(QueryError, match="empty SQL"):
        one_run.sql("   ")


def test_unknown_table_lists_the_tables(one_run):
    with pytest.raises(QueryError) as e:
        one_run.sql("SELECT * FROM lakeml.runz")
    msg = str(e.value)
    assert "unknown table" in msg and "runz" in msg
    for name in ("lakeml.runs", "lakeml.metrics", "lakeml.leaderboard", "lakeml.run_summary"):
        assert name in msg
    assert "__lakeml" not in msg


def test_unknown_column_is_a_query_error(one_run):
    with pytest.raises(QueryError, match="nosuchcol"):
        one_run.sql("SELECT nosuchcol FROM lakeml.runs")


def test_missing_extension_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(extensions, "EXTENSIONS", ("httpfs", "avro", "iceberg", "notanextension"))
    with pytest.raises(MissingDependencyError) as e:
        extensions.new_connection()
    msg = str(e.value)
    assert "pip install 'duckdb-extension-notanextension==" in msg and "never downloads" in msg


def test_missing_extension_surfaces_from_lake_sql(file_lake, monkeypatch):
    monkeypatch.setattr(extensions, "EXTENSIONS", ("httpfs", "avro", "iceberg", "notanextension"))
    with pytest.raises(MissingDependencyError, match="pip install"):
        file_lake.sql("SELECT 1")


def test_own_duckdb_connection(one_run, tmp_path):
    import duckdb

    con = one_run.duckdb()
    assert con.execute("SELECT count(*) FROM lakeml.run_summary").fetchone() == (1,)
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"COPY (SELECT 1) TO '{tmp_path}/out.csv'")
    con.close()
