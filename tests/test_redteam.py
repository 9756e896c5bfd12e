"""What a red team did to lakeml (issue 9, section 6), each as a regression test.

Bad input gets a typed error at the call, nothing already logged is lost, the read-only
SQL session stays read-only and inside the lake's storage, and no secret is printed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import lakeml
from lakeml.errors import InvalidInputError, LakemlError, QueryError, ReadOnlyError, StorageError
from lakeml.query import filters
from lakeml.registry import names
from tests.conftest import s3_lake_kwargs

BAD = b"data-\xff.csv".decode("utf-8", "surrogateescape")  # what os.fsdecode makes of a non-UTF-8 name


def _finished(lake, experiment="e", name=None, **params):
    r = lake.create_run(experiment, run_name=name)
    for k, val in params.items():
        lake.log_param(r.run_id, k, val)
    lake.log_metric(r.run_id, "loss", 0.5)
    lake.set_terminated(r.run_id)
    return r.run_id


# -- data loss: bi export ----------------------------------------------------------------------------

def _runs(wh: Path) -> int:
    with sqlite3.connect(wh / "catalog.db") as con:
        return con.execute("SELECT count(*) FROM iceberg_tables").fetchone()[0]


def test_bi_export_cli_refuses_the_catalog_file(tmp_path, py):
    wh = tmp_path / "wh"
    lake = lakeml.connect(warehouse=wh)
    _finished(lake)
    lake.close()
    before = (wh / "catalog.db").read_bytes()
    env = {**os.environ, "LAKEML_WAREHOUSE": str(wh), "HOME": str(tmp_path)}
    for extra in ([], ["--overwrite"]):
        done = subprocess.run([py, "-m", "lakeml", "bi", "export", str(wh / "catalog.db"), "--extension-dir",
                               str(tmp_path / "ext"), *extra], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "catalog database" in done.stderr and "Traceback" not in done.stderr
    assert (wh / "catalog.db").read_bytes() == before and _runs(wh) > 0
    lake = lakeml.connect(warehouse=wh)
    assert lake.sql("SELECT count(*) FROM lakeml.runs_latest").item() == 1
    lake.close()


def test_bi_export_refuses_paths_inside_the_warehouse(file_lake, tmp_path):
    _finished(file_lake)
    wh = Path(file_lake.config.warehouse_dir)
    for target in (wh / "lakeml.duckdb", wh / "lakeml" / "runs" / "x.duckdb"):
        with pytest.raises(InvalidInputError, match="warehouse"):
            file_lake.bi_export(target, extension_directory=str(tmp_path / "ext"))
        assert not target.exists()
    link = tmp_path / "innocent.db"
    link.symlink_to(wh / "catalog.db")
    with pytest.raises(InvalidInputError, match="catalog database|warehouse"):
        file_lake.bi_export(link, overwrite=True, extension_directory=str(tmp_path / "ext"))
    assert file_lake.sql("SELECT count(*) FROM lakeml.runs_latest").item() == 1


def test_bi_export_keeps_an_existing_file_unless_overwrite(file_lake, tmp_path, py):
    import duckdb

    _finished(file_lake)
    mine = tmp_path / "mine.duckdb"
    with duckdb.connect(str(mine)) as con:
        con.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    ext = str(tmp_path / "ext")
    with pytest.raises(InvalidInputError, match="exists.*overwrite"):
        file_lake.bi_export(mine, extension_directory=ext)
    with duckdb.connect(str(mine), read_only=True) as con:
        assert con.execute("SELECT answer FROM precious").fetchone() == (42,)

    other = tmp_path / "notes.db"  # not a DuckDB file: never replaced
    other.write_text("my notes")
    with pytest.raises(InvalidInputError, match="not a DuckDB database"):
        file_lake.bi_export(other, overwrite=True, extension_directory=ext)
    assert other.read_text() == "my notes"

    exp = file_lake.bi_export(mine, overwrite=True, extension_directory=ext)
    assert "lakeml.runs" in exp.views
    # the CLI: refused without --overwrite, replaced with it
    env = {**os.environ, "LAKEML_WAREHOUSE": file_lake.config.warehouse_dir, "HOME": str(tmp_path)}
    cmd = [py, "-m", "lakeml", "bi", "export", str(mine), "--extension-dir", ext]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "--overwrite" in done.stderr
    done = subprocess.run([*cmd, "--overwrite"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr


# -- data loss: strings that are not UTF-8 -----------------------------------------------------------

def test_lone_surrogates_are_refused_at_the_call_and_nothing_is_lost(file_lake, tmp_path):
    lake = file_lake
    other = lake.create_run("e", run_name="other")
    lake.log_param(other.run_id, "lr", 0.1)  # another run's buffered data must survive
    run = lake.create_run("e", run_name="victim")
    calls = {
        "param value": lambda: lake.log_param(run.run_id, "f", BAD),
        "param key": lambda: lake.log_param(run.run_id, BAD, 1),
        "tag value": lambda: lake.set_tag(run.run_id, "f", BAD),
        "tags": lambda: lake.set_tags(run.run_id, {"ok": "x", "f": BAD}),
        "metric key": lambda: lake.log_metric(run.run_id, BAD, 1.0),
        "experiment": lambda: lake.create_run(BAD),
        "run name": lambda: lake.create_run("e", run_name=BAD),
        "artifact path": lambda: lake.log_artifact(run.run_id, __file__, artifact_path=BAD),
        "model description": lambda: lake.create_model("m", description=BAD),
        "search filter": lambda: lake.search_runs("e", f"params.f = '{BAD}'"),
        "sql": lambda: lake.sql(f"SELECT '{BAD}'"),
    }
    for what, call in calls.items():
        with pytest.raises(InvalidInputError, match="not valid Unicode|use letters") as e:
            call()
        assert "\\udcff" in str(e.value) or "invalid" in str(e.value), what
    # a file whose name is not UTF-8, alone and in a folder
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "fine.txt").write_text("ok")
    bad_file = Path(os.fsdecode(bytes(folder) + b"/data-\xff.csv"))
    bad_file.write_text("x")
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        lake.log_artifact(run.run_id, bad_file)
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        lake.log_artifacts(run.run_id, folder)
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        lake.log_input(run.run_id, path=bad_file)
    assert lake.list_artifacts(run.run_id) == []  # checked before the first upload
    # an exception message is free text: escaped, never refused (the run's end must not be lost)
    failed = lake.create_run("e", run_name="failed")
    lake.set_terminated(failed.run_id, "FAILED", error=f"FileNotFoundError: {bad_file}")
    lake.set_terminated(run.run_id)
    lake.set_terminated(other.run_id)
    lake.flush()
    assert lake.committer.last_error is None
    assert lake.get_run(other.run_id).params == {"lr": "0.1"}
    assert lake.get_run(run.run_id).tags.get("f") is None
    ended = lake.get_run(failed.run_id)
    assert ended.status.value == "FAILED" and ended.error.endswith("data-\\udcff.csv")


def test_utf8_text_rule():
    from lakeml.validation import utf8_text

    assert utf8_text("é ✓ 🦆", "x") == "é ✓ 🦆"
    with pytest.raises(InvalidInputError, match=r"'\\udcff' at position 5"):
        utf8_text(BAD, "param 'f' value")


# -- guard: functions that change the session --------------------------------------------------------

@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    lake = lakeml.connect(warehouse=tmp_path_factory.mktemp("red") / "wh", commit_interval=0.2)
    _finished(lake, name="r")
    yield lake
    lake.close()


@pytest.mark.parametrize("query", [
    "SELECT * FROM enable_logging(storage='file', storage_path='{tmp}/log')",
    "SELECT * FROM enable_logging(level='trace')",
    "SELECT * FROM enable_profiling()",
    "SELECT * FROM main.enable_logging()",
    "SELECT (SELECT count(*) FROM enable_profiling())",
    "WITH x AS (SELECT * FROM enable_logging()) SELECT 1",
    "SELECT 1 UNION ALL SELECT * FROM checkpoint()",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM json_execute_serialized_sql('x')",
    "SELECT * FROM duckdb_logs()",
    "SELECT * FROM duckdb_secrets()",
    "EXPLAIN (FORMAT json) SELECT * FROM enable_profiling()",
    "EXPLAIN ANALYZE SELECT * FROM enable_logging()",
])
def test_state_changing_table_functions_are_refused(one_run, tmp_path, query):
    with pytest.raises(ReadOnlyError, match="table function"):
        one_run.sql(query.format(tmp=tmp_path))
    assert not list(tmp_path.iterdir())
    # the session still works and logs nothing
    assert one_run.sql("SELECT count(*) FROM lakeml.runs_latest").item() == 1
    assert one_run.sql("SELECT count(*) FROM lakeml.runs_latest", read_write=True).item() == 1


def test_explain_with_options_is_a_valid_read(one_run):
    out = one_run.sql("EXPLAIN (FORMAT json) SELECT 1")
    assert out.height == 1 and "PROJECTION" in out.row(0)[1]
    assert one_run.sql("EXPLAIN (FORMAT json) SELECT count(*) FROM lakeml.runs").height == 1
    with pytest.raises(ReadOnlyError, match="COPY"):
        one_run.sql("EXPLAIN (ANALYZE) COPY (SELECT 1) TO '/tmp/never.csv'")


def test_nul_byte_cannot_hide_a_function(one_run):
    with pytest.raises(QueryError, match="NUL byte"):
        one_run.sql("SELECT 1 AS a\x00, * FROM enable_logging()")
    assert one_run.sql("SELECT count(*) FROM lakeml.runs_latest").item() == 1


def test_harmless_table_functions_still_work(one_run):
    assert one_run.sql("SELECT count(*) FROM range(5)").item() == 5
    assert one_run.sql("SELECT count(*) FROM generate_series(1, 3)").item() == 3
    assert one_run.sql("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'lakeml'").item() > 5
    assert one_run.sql("SELECT count(*) FROM pragma_table_info('lakeml.runs')").item() > 5
    assert one_run.sql("SELECT unnest([1, 2, 3]) AS x").height == 3


def test_paths_must_be_literals_without_dot_segments(one_run):
    wh = one_run.config.warehouse_dir
    for q in (f"SELECT * FROM read_parquet('{wh}/lakeml/../lakeml/runs/data/*.parquet')",
              f"SELECT * FROM '{wh}/lakeml/./runs/data/x.parquet'",
              "SELECT * FROM read_csv('s3://b/wh/%2e%2e/other/x.csv')",
              f"SELECT * FROM read_parquet('{wh}/' || 'lakeml/runs/data/*.parquet')"):
        with pytest.raises(ReadOnlyError):
            one_run.sql(q)
    assert one_run.sql(f"SELECT count(*) FROM read_parquet(['{wh}/lakeml/runs/data/*.parquet'])").item() == 2


# -- guard: confinement and the temp dir -------------------------------------------------------------

@pytest.mark.s3
def test_s3_reads_are_confined_to_the_warehouse_prefix(s3_bucket, tmp_path):
    server, bucket = s3_bucket
    s3 = server.client()
    for key in ("other/secret.csv", "wh2/secret.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"a\n1\n")
    lake = lakeml.connect(commit_interval=0.2, **s3_lake_kwargs(server, bucket, tmp_path))
    try:
        _finished(lake)
        for path in (f"s3://{bucket}/other/secret.csv", f"s3://{bucket}/wh2/secret.csv",
                     f"s3://{bucket}/wh/../other/secret.csv", f"s3://{bucket}/wh/./../other/secret.csv"):
            with pytest.raises(ReadOnlyError):
                lake.sql(f"SELECT * FROM read_csv('{path}')")
        n = lake.sql(f"SELECT count(*) FROM read_parquet('s3://{bucket}/wh/lakeml/runs/data/*.parquet')").item()
        assert n == 2
        assert lake.sql("SELECT count(*) FROM lakeml.runs_latest").item() == 1
    finally:
        lake.close()


def test_allowed_roots_keep_the_prefix():
    from lakeml.query.lockdown import _root

    assert _root("s3://bucket/wh") == "s3://bucket/wh/"
    assert _root("s3://bucket/wh/lakeml/runs/") == "s3://bucket/wh/lakeml/runs/"
    assert _root("s3://bucket/wh", bucket=True) == "s3://bucket/"
    assert _root("/data/wh") == "/data/wh/"


def test_temp_dir_is_private_and_removed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    predictable = Path(tempfile.gettempdir()) / f"lakeml-duckdb-{os.getpid()}"
    planted = not predictable.exists()
    if planted:  # what an attacker on the same machine does before lakeml starts
        predictable.mkdir()
        (predictable / "leak").symlink_to(secret)
    lake = lakeml.connect(warehouse=tmp_path / "wh")
    try:
        _finished(lake)
        tmp = lake.sql("SELECT current_setting('temp_directory') AS t").item()
        assert Path(tmp) != predictable and Path(tmp).is_dir()
        assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o700
        if planted:
            with pytest.raises(ReadOnlyError):
                lake.sql(f"SELECT * FROM read_text('{predictable}/leak')")
    finally:
        lake.close()
        if planted:
            (predictable / "leak").unlink()
            predictable.rmdir()
    assert not Path(tmp).exists()


# -- secrets -----------------------------------------------------------------------------------------

PG = "postgresql+psycopg2://u:PASS1234@127.0.0.1:1/db"


def test_catalog_password_is_masked_by_doctor_and_errors(tmp_path, py):
    env = {**os.environ, "PYICEBERG_HOME": str(tmp_path), "PYICEBERG_CATALOG__X__URI": PG,
           "PYICEBERG_CATALOG__X__WAREHOUSE": (tmp_path / "wh").as_uri(), "HOME": str(tmp_path)}
    env.pop("LAKEML_DEBUG", None)
    for cmd in (["doctor", "--catalog", "x"], ["runs", "list", "--catalog", "x"],
                ["sql", "SELECT 1", "--catalog", "x"]):
        done = subprocess.run([py, "-m", "lakeml", *cmd], capture_output=True, text=True, env=env, timeout=120,
                              cwd=tmp_path)
        out = done.stdout + done.stderr
        assert done.returncode != 0 and "PASS1234" not in out, (cmd, out)
        assert "u:****@127.0.0.1" in out, (cmd, out)


def test_every_lakeml_error_masks_secrets():
    from lakeml.masking import mask_secrets

    e = StorageError(f"cannot open catalog 'x' ({PG}): refused")
    assert "PASS1234" not in str(e) and "u:****@127.0.0.1:1/db" in str(e)
    assert "PASS1234" not in repr(QueryError(f"x {PG}"))
    assert mask_secrets("host=h user=u password=hunter2 dbname=x") == "host=h user=u password=**** dbname=x"
    assert mask_secrets("s3://bucket/wh/x and a@b.com") == "s3://bucket/wh/x and a@b.com"
    from lakeml.storage.config import LakeConfig

    cfg = LakeConfig("x", {"uri": PG, "s3.secret-access-key": "abc"}, "lakeml", "file:///a")
    shown = cfg.describe()
    assert shown["uri"] == "postgresql+psycopg2://u:****@127.0.0.1:1/db" and shown["s3.secret-access-key"] == "****"
    assert "PASS1234" not in repr(cfg) and "abc" not in repr(cfg)


# -- validation: names -------------------------------------------------------------------------------

def test_trailing_newline_fails_every_name_check(file_lake):
    lake = file_lake
    run = lake.create_run("e")
    with pytest.raises(InvalidInputError, match="model name"):
        lake.create_model("churn\n")
    with pytest.raises(InvalidInputError, match="alias"):
        lake.set_alias("churn", "champion\n", 1)
    with pytest.raises(InvalidInputError, match="environment"):
        lake.record_deployment("churn", 1, environment="prod\n", service="api")
    for call in (lambda: lake.log_metric(run.run_id, "loss\n", 1), lambda: lake.log_param(run.run_id, "lr\n", 1),
                 lambda: lake.set_tag(run.run_id, "t\n", "v")):
        with pytest.raises(InvalidInputError, match="key"):
            call()
    with pytest.raises(InvalidInputError, match="run id"):
        lake.get_run(run.run_id + "\n")
    for check, good in ((names.model_name, "churn"), (names.alias, "champion"), (names.environment, "prod")):
        assert check(good) == good
        with pytest.raises(InvalidInputError):
            check(good + "\n")
    with pytest.raises(InvalidInputError):
        names.parse_ref("churn/3\n")


# -- validation: search filters ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def depth_runs(tmp_path_factory):
    lake = lakeml.connect(warehouse=tmp_path_factory.mktemp("depth") / "wh", commit_interval=0.2)
    for d in (6, 12, 100):
        _finished(lake, "d", f"d{d}", max_depth=d)
    _finished(lake, "d", "text", max_depth="deep")
    yield lake
    lake.close()


def _names(df) -> list[str]:
    return sorted(df["run_name"].to_list())


def test_params_compare_numerically_when_both_sides_are_numbers(depth_runs):
    lake = depth_runs
    assert _names(lake.search_runs("d", "params.max_depth > 10 AND params.max_depth < 1000")) == ["d100", "d12"]
    assert _names(lake.search_runs("d", "params.max_depth > '10' AND params.max_depth != 'deep'")) == ["d100", "d12"]
    assert _names(lake.search_runs("d", "params.max_depth = 6.0")) == ["d6"]
    assert _names(lake.search_runs("d", "params.max_depth >= 'd'")) == ["text"]  # strings compare as strings
    assert _names(lake.search_runs("d", "params.max_depth IN ('6', 'deep')")) == ["d6", "text"]


def test_filter_size_is_limited(depth_runs):
    lake = depth_runs
    ok = " AND ".join(f"metrics.k{i} IS NULL" for i in range(filters.MAX_KEYS))
    assert len(lake.search_runs("d", ok)) == 4
    too_many_keys = " AND ".join(f"metrics.k{i} > 0" for i in range(filters.MAX_KEYS + 1))
    with pytest.raises(InvalidInputError, match=f"the limit is {filters.MAX_KEYS}"):
        lake.search_runs("d", too_many_keys)
    too_many_clauses = " AND ".join("metrics.loss > 0" for _ in range(filters.MAX_CLAUSES + 1))
    with pytest.raises(InvalidInputError, match=f"the limit is {filters.MAX_CLAUSES}"):
        lake.search_runs("d", too_many_clauses)
    with pytest.raises(InvalidInputError, match="characters"):
        lake.search_runs("d", "tags.x = '" + "y" * filters.MAX_FILTER_LENGTH + "'")


@pytest.mark.parametrize("kwargs, match", [
    ({"filter_string": "metrics.loss = 'abc'"}, "is a number"),
    ({"filter_string": "metrics.x LIKE"}, "expected a pattern"),
    ({"filter_string": "metrics.x LIKE '0.5%'"}, "not text"),
    ({"filter_string": "attributes.start_time > 'yesterday'"}, "ISO timestamp"),
    ({"filter_string": "attributes.start_time > 1.5"}, "milliseconds"),
    ({"filter_string": "params.a >"}, "expected a value"),
    ({"filter_string": 5}, "must be a string"),
    ({"order_by": [5]}, "order_by"),
    ({"order_by": 5}, "order_by"),
    ({"max_results": "10"}, "max_results"),
    ({"max_results": 0}, "max_results"),
    ({"offset": -1}, "offset"),
])
def test_bad_searches_are_typed_errors(depth_runs, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        depth_runs.search_runs("d", **kwargs)


def test_valid_searches_that_used_to_fail(depth_runs):
    lake = depth_runs
    assert len(lake.search_runs("d", "attributes.start_time > 5")) == 4
    assert len(lake.search_runs("d", "attributes.end_time < 4102444800000")) == 4  # 2100-01-01 in ms
    assert len(lake.search_runs("d", "attributes.start_time > '2000-01-01T00:00:00+00:00'")) == 4
    assert len(lake.search_runs("d", "attributes.start_time > '2100-01-01'")) == 0
    assert len(lake.search_runs("d", "metrics.loss = '0.5'")) == 4
    assert len(lake.search_runs("d", "metrics.loss < 'inf'")) == 4
    assert _names(lake.search_runs("d", order_by="params.max_depth DESC", max_results=1)) == ["text"]


def test_step_must_be_one_integer(file_lake):
    np = pytest.importorskip("numpy")
    run = file_lake.create_run("e")
    with pytest.raises(InvalidInputError, match="must be one integer, got ndarray"):
        file_lake.log_metric(run.run_id, "loss", 1.0, step=np.array([1, 2, 3]))
    with pytest.raises(InvalidInputError, match="one integer"):
        file_lake.log_metric(run.run_id, "loss", 1.0, step=np.array([1]))
    file_lake.log_metric(run.run_id, "loss", 1.0, step=np.int64(3))
    file_lake.log_metric(run.run_id, "loss", 2.0, step=np.array(4))
    assert file_lake.get_metric_history(run.run_id, "loss")["step"].to_list() == [3, 4]


# -- artifacts: symlinks -----------------------------------------------------------------------------

def test_log_artifacts_skips_links_that_leave_the_folder(file_lake, tmp_path, caplog):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w")
    (folder / "sub" / "leak.txt").symlink_to(secret)
    (folder / "hostname").symlink_to("/etc/hostname")
    (folder / "alias.bin").symlink_to(folder / "weights.bin")  # inside the folder: kept
    run = file_lake.create_run("e")
    with caplog.at_level(logging.WARNING, logger="lakeml"):
        stored = file_lake.log_artifacts(run.run_id, folder)
    assert sorted(stored) == ["alias.bin", "weights.bin"]
    assert sorted(stored.skipped_links) == ["hostname", "sub/leak.txt"]
    assert "sub/leak.txt" in caplog.text and "follow_links" in caplog.text
    listed = {a.path for a in file_lake.list_artifacts(run.run_id)}
    assert listed == {"alias.bin", "weights.bin"}
    dst = Path(file_lake.download_artifacts(run.run_id, "", tmp_path / "dl"))
    assert "top secret" not in "".join(p.read_text(errors="replace") for p in dst.rglob("*") if p.is_file())


def test_put_dir_follows_links_only_when_asked(file_lake, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("x")
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "link.txt").symlink_to(secret)
    store = file_lake.artifacts
    run = file_lake.create_run("e")
    uri = file_lake.artifact_uri(run.run_id)
    assert [o.path for o in store.put_dir(folder, uri, "a")] == []
    assert [o.path for o in store.put_dir(folder, uri, "b", follow_links=True)] == ["b/link.txt"]


def test_errors_are_lakeml_errors():
    assert issubclass(ReadOnlyError, LakemlError) and issubclass(InvalidInputError, ValueError)
