"""Other engines read what lakeml wrote: docs/engines.md's programs (docs_src/engines_*.py) run in a
subprocess that never imports lakeml, against a warehouse lakeml wrote, and their answers are checked.
Also: `lakeml tables`, the sort order id on data files, the params_typed view."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lakeml

ROOT = Path(__file__).resolve().parent.parent
DOCS_SRC = ROOT / "docs_src"
LAKEML = [sys.executable, "-m", "lakeml"]

# Run a docs program, then prove it never imported lakeml (it is installed, so an import would succeed).
RUNNER = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__'); "
          "assert 'lakeml' not in sys.modules, 'the program imported lakeml'; print('no lakeml imported')")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A warehouse lakeml wrote: 3 runs (one FAILED), a retagged and a deleted tag, numeric params."""
    base = tmp_path_factory.mktemp("engines")
    wh = base / "wh"
    lake = lakeml.connect(warehouse=wh, commit_interval=0.2, commit_deadline=30)
    ids = {}
    for name, depth, status in (("a", "2", "FINISHED"), ("b", "10", "FAILED"), ("c", "6", "FINISHED")):
        run = lake.create_run("sweep", run_name=name, tags={"stage": "dev"})
        ids[name] = run.run_id
        lake.log_params(run.run_id, {"max_depth": depth, "lr": "0.1"})
        for step in range(5):
            lake.log_metric(run.run_id, "loss", 1.0 / (step + 1 + int(depth)), step=step)
        (base / f"{name}.txt").write_text(f"report of {name}")
        lake.log_artifact(run.run_id, base / f"{name}.txt")
        lake.set_terminated(run.run_id, status)
    lake.set_tag(ids["a"], "stage", "prod")  # a later row wins
    lake.delete_tag(ids["b"], "stage")  # a deletion is a row too
    lake.flush()
    lake.close()
    home = base / "home"  # DuckDB's extension folder: filled from the pip-installed extensions (offline)
    import duckdb

    from lakeml.query.extensions import extension_path

    con = duckdb.connect(config={"extension_directory": str(home / ".duckdb" / "extensions")})
    for ext in ("avro", "iceberg"):
        con.execute(f"INSTALL '{extension_path(ext)}'")
    con.close()
    env = {**os.environ, "LAKEML_WAREHOUSE": str(wh), "HOME": str(home)}
    env.pop("PYICEBERG_CATALOG__LAKEML__URI", None)
    return wh, env, ids


def run_doc(name: str, env: dict, cwd: Path) -> list[str]:
    """Run docs_src/<name> without lakeml; returns its output lines (the import check line removed)."""
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(DOCS_SRC / name)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "no lakeml imported"
    return lines[:-1]


def test_pyiceberg_reads_the_catalog_opened_as_lakeml(written, tmp_path):
    wh, env, _ = written
    out = run_doc("engines_pyiceberg.py", env, tmp_path)
    tables = ast.literal_eval(out[0].removeprefix("tables: "))
    assert {"runs", "params", "metrics", "tags", "artifacts", "experiments"} <= set(tables)
    assert out[1] == "run events: 6 runs: 3"  # RUNNING + the terminal event, per run


def test_the_catalog_answers_only_under_the_name_lakeml(written):
    from pyiceberg.catalog import load_catalog

    wh, _, _ = written
    props = {"type": "sql", "uri": f"sqlite:///{wh}/catalog.db", "warehouse": wh.as_uri()}
    assert load_catalog("lakeml", **props).list_tables("lakeml")
    assert load_catalog("other", **props).list_namespaces() == []  # what docs/engines.md warns about


def test_polars_current_state_and_typed_params(written, tmp_path):
    _, env, _ = written
    runs, tags, depths = (ast.literal_eval(line) for line in run_doc("engines_polars.py", env, tmp_path))
    assert runs == [("a", "FINISHED"), ("b", "FAILED"), ("c", "FINISHED")]
    assert tags == [("a", "stage", "prod"), ("c", "stage", "dev")]  # b's tag was deleted
    assert depths == ["2", "6", "10"]  # as numbers; as strings it would be 10, 2, 6


def test_duckdb_by_metadata_location(written, tmp_path):
    _, env, _ = written
    runs, tags, depths = (ast.literal_eval(line) for line in run_doc("engines_duckdb.py", env, tmp_path))
    assert runs == [("a", "FINISHED"), ("b", "FAILED"), ("c", "FINISHED")]
    assert tags == 2
    assert depths == [("2",), ("6",), ("10",)]


def test_daft(written, tmp_path):
    pytest.importorskip("daft", reason="daft is in the test extra: pip install -e '.[test]'")
    _, env, _ = written
    env = {k: v for k, v in env.items() if k != "RAY_ADDRESS"}  # the local runner (Ray: docs/engines.md)
    status, best = (ast.literal_eval(line) for line in run_doc("engines_daft.py", env, tmp_path))
    assert status == {"status": ["FAILED", "FINISHED"], "runs": [1, 2]}
    assert best == {"key": ["loss"], "best": [pytest.approx(1.0 / 15)]}  # run b (depth 10), step 4


def test_lakeml_tables_prints_working_duckdb_snippets(written, tmp_path):
    import duckdb

    wh, env, _ = written
    proc = subprocess.run([*LAKEML, "tables", "-w", str(wh), "-o", "json"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = {t["name"]: t for t in json.loads(proc.stdout)}
    assert {"runs", "params", "metrics", "tags"} <= set(found)
    runs = found["runs"]
    assert runs["identifier"] == "lakeml.runs" and runs["metadata_location"].endswith(".metadata.json")
    assert set(runs["snippets"]) == {"duckdb", "polars", "daft", "pyiceberg"}
    con = duckdb.connect(config={"extension_directory": str(Path(env["HOME"]) / ".duckdb" / "extensions")})
    con.execute("LOAD iceberg")
    assert con.sql(f"SELECT count(*) FROM ({runs['snippets']['duckdb'].rstrip(';')})").fetchone() == (6,)
    text = subprocess.run([*LAKEML, "tables", "-w", str(wh), "--engine", "polars"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert text.returncode == 0 and "pl.scan_iceberg(" in text.stdout and "# lakeml.metrics" in text.stdout


def test_polars_snippet_from_lakeml_tables_runs(written, tmp_path):
    wh, env, _ = written
    proc = subprocess.run([*LAKEML, "tables", "-w", str(wh), "-o", "json"], capture_output=True, text=True,
                          env=env, timeout=120)
    params = next(t for t in json.loads(proc.stdout) if t["name"] == "params")
    prog = tmp_path / "snippet.py"
    prog.write_text(params["snippets"]["polars"] + "\nprint(df.height)\n")
    assert run_doc_path(prog, env, tmp_path) == ["6"]  # 3 runs x (max_depth, lr)


def run_doc_path(path: Path, env: dict, cwd: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[:-1]


def test_lakeml_tables_on_an_empty_warehouse(tmp_path):
    proc = subprocess.run([*LAKEML, "tables", "-w", str(tmp_path / "empty")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(none)"


def test_data_files_record_the_sort_order(lake):
    """Appends and compaction both write sorted files and tag them with the table's sort order id."""
    for i in range(3):
        run = lake.create_run("sorted")
        lake.log_metrics(run.run_id, {"b": 1.0, "a": 2.0}, step=1)
        lake.log_params(run.run_id, {"z": "1", "y": "2"})
        lake.set_tags(run.run_id, {"t2": "x", "t1": "y"})
        lake.set_terminated(run.run_id)
        lake.flush()  # one commit (one data file) per run
    for name in ("metrics", "params", "runs", "tags"):
        tbl = lake.store.table(name, refresh=True)
        order = tbl.sort_order()
        assert order.order_id > 0 and not order.is_unsorted
        files = tbl.inspect.files()  # read from the manifest entries
        assert files.num_rows >= 1
        assert set(files["sort_order_id"].to_pylist()) == {order.order_id}, name
    lake.maintain(older_than=0)
    params = lake.store.table("params", refresh=True)
    assert params.inspect.files().num_rows == 1  # compacted: one new file, written by compaction
    assert params.inspect.files()["sort_order_id"].to_pylist() == [params.sort_order().order_id]


def test_unsorted_data_is_not_tagged(file_lake):
    import pyarrow as pa

    from lakeml.storage.tables import sorted_order_id

    tbl = file_lake.store.table("params")
    schema = file_lake.store.contracts["params"].arrow_schema()
    rows = {"run_id": ["b", "a"], "key": ["k", "k"], "value": ["1", "2"], "logged_at": [1, 2]}
    data = pa.table({f.name: pa.array(rows[f.name], f.type) for f in schema}, schema=schema)
    assert sorted_order_id(tbl, data) is None
    assert sorted_order_id(tbl, data.sort_by([("run_id", "ascending")])) == tbl.sort_order().order_id


def test_params_typed_view_sorts_numbers_as_numbers(file_lake):
    for depth in ("10", "2", "abc", "6"):
        run = file_lake.create_run("typed")
        file_lake.log_params(run.run_id, {"max_depth": depth, "flag": "True"})
    rows = file_lake.sql("SELECT value, value_num FROM lakeml.params_typed WHERE key = 'max_depth' "
                         "ORDER BY value_num NULLS LAST").rows()
    assert rows == [("2", 2.0), ("6", 6.0), ("10", 10.0), ("abc", None)]
    flags = file_lake.sql("SELECT DISTINCT value_bool FROM lakeml.params_typed WHERE key = 'flag'").rows()
    assert flags == [(True,)]


def test_the_overridden_pyiceberg_method_still_exists():
    """tables.CachedTransaction overrides Transaction._append_snapshot_producer to tag data files; if a
    pyiceberg upgrade renames it, the override is silently dead: fail here, naming the fix."""
    from pyiceberg.table import Transaction

    from lakeml.storage import _pyiceberg_compat as compat

    assert callable(vars(Transaction).get("_append_snapshot_producer")), compat.upgrade_message(
        "pyiceberg.table.Transaction._append_snapshot_producer",
        compat.PRIVATE_ATTRIBUTES[("pyiceberg.table.Transaction", "_append_snapshot_producer")])


@pytest.mark.s3
def test_lakeml_tables_snippets_read_an_s3_lake(s3_bucket, tmp_path):
    """On S3 the snippets carry the endpoint, region and key id; with the secret filled in, DuckDB and
    polars (in a process without lakeml) read the table lakeml wrote to moto."""
    from lakeml.query.extensions import new_connection
    from lakeml.storage.access import SECRET_PLACEHOLDER, table_access
    from tests.conftest import s3_lake_kwargs

    server, bucket = s3_bucket
    lake = lakeml.connect(commit_interval=0.2, commit_deadline=30, **s3_lake_kwargs(server, bucket, tmp_path))
    for depth in ("2", "10"):
        lake.log_params(lake.create_run("s3").run_id, {"max_depth": depth})
    lake.flush()
    found = {t.name: t for t in table_access(lake.store)}
    lake.close()
    secret = server.props()["s3.secret-access-key"]
    duck, pol = (found["params"].snippets[k].replace(SECRET_PLACEHOLDER, secret) for k in ("duckdb", "polars"))
    assert found["params"].metadata_location.startswith(f"s3://{bucket}/") and "ENDPOINT" in duck
    con = new_connection()
    create_secret, select = duck.split(";\n")
    con.execute(create_secret)
    assert con.sql(f"SELECT count(*) FROM ({select.rstrip(';')})").fetchone() == (2,)
    prog = tmp_path / "polars_s3.py"
    prog.write_text(pol + "\nprint(sorted(df['value'].to_list()))\n")
    assert run_doc_path(prog, dict(os.environ), tmp_path) == ["['10', '2']"]
