"""Quiet logs: a retried commit is expected with several writers, so it is DEBUG and counted, never a
warning on the user's terminal. Races are real (stale tables, concurrent processes on one catalog)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lakeml
from lakeml import logs
from lakeml.errors import InvalidInputError
from lakeml.storage.retry import reset_retry_stats, retry_stats
from tests.conftest import postgres_lake_kwargs, s3_lake_kwargs
from tests.workers.lakes import lake_spec, open_spec

ROOT = Path(__file__).resolve().parent.parent

# One process, a real lost race: a stale Table appends after another client committed, so
# pyiceberg's own commit loop logs "Commit failed due to a concurrent update, retrying" and rebases.
STALE_APPEND = ("import json, sys, lakeml; from lakeml.storage.retry import retry_stats; "
                "from tests.test_logs import stale_append; stale_append(sys.argv[1]); print(json.dumps(retry_stats()))")


def stale_append(wh: str | Path) -> list[int]:
    """Two clients of one SQLite catalog; the second commits between the first's load and append."""
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    Path(wh).mkdir(parents=True)
    props = {"uri": f"sqlite:///{wh}/catalog.db", "warehouse": Path(wh).as_uri()}
    mine, theirs = SqlCatalog("lakeml", **props), SqlCatalog("lakeml", **props)
    mine.create_namespace("t")
    schema = pa.schema([pa.field("n", pa.int64())])
    mine.create_table("t.x", schema)
    stale = mine.load_table("t.x")
    theirs.load_table("t.x").append(pa.table({"n": [1]}, schema=schema))
    stale.append(pa.table({"n": [2]}, schema=schema))
    return sorted(theirs.load_table("t.x").scan().to_arrow()["n"].to_pylist())


# One of several writer processes: all flush at the same moment, round after round (file barriers).
WRITER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from lakeml.storage.retry import retry_stats
    from tests.workers.lakes import open_spec
    spec, gate = sys.argv[1], Path(sys.argv[2])
    index, procs, rounds = (int(a) for a in sys.argv[3:6])

    def barrier(name):
        (gate / f"{name}-{index}").touch()
        stop = time.monotonic() + 120
        while len(list(gate.glob(f"{name}-*"))) < procs:
            if time.monotonic() > stop:
                raise SystemExit(f"barrier {name}: the other writers never came")
            time.sleep(0.005)

    lake = open_spec(spec, commit_interval=60)
    run = lake.create_run("quiet", run_name=f"w{index}")
    for r in range(rounds):
        for step in range(200):
            lake.log_metric(run.run_id, "loss", float(step), r * 1000 + step)
        barrier(f"r{r}")
        lake.flush()
    lake.set_terminated(run.run_id)
    lake.close()
    print(json.dumps(retry_stats()))
""")


def _retries(stats: dict) -> int:
    return sum(row["retries"] for row in stats.values())


def test_pyiceberg_retry_is_debug_on_lakeml_logger_and_counted(tmp_path, caplog):
    reset_retry_stats()
    with caplog.at_level(logging.DEBUG):
        assert stale_append(tmp_path / "wh") == [1, 2]
    demoted = [r for r in caplog.records if "concurrent update" in r.getMessage()]
    assert demoted, "the race really happened"
    assert all(r.name == "lakeml.pyiceberg" and r.levelno == logging.DEBUG for r in demoted)
    assert retry_stats()[logs.PYICEBERG_RETRIES]["retries"] == len(demoted)
    reset_retry_stats()


def test_a_lost_race_prints_nothing_unless_asked(tmp_path):
    quiet = subprocess.run([sys.executable, "-c", STALE_APPEND, str(tmp_path / "a")], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, logs.ENV_LEVEL: ""}, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)[logs.PYICEBERG_RETRIES]["retries"] >= 1
    loud = subprocess.run([sys.executable, "-c", STALE_APPEND, str(tmp_path / "b")], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, logs.ENV_LEVEL: "debug"}, timeout=120)
    assert loud.returncode == 0
    assert "DEBUG lakeml.pyiceberg: Commit failed due to a concurrent update" in loud.stderr


@pytest.mark.parametrize("where", ["file", pytest.param("s3", marks=pytest.mark.s3),
                                   pytest.param("pg", marks=pytest.mark.postgres)])
def test_concurrent_writer_processes_print_nothing_to_stderr(where, tmp_path, request):
    procs, rounds = 4, 3
    gate = tmp_path / "gate"
    gate.mkdir()
    if where == "file":
        lake = lakeml.connect(warehouse=tmp_path / "wh")
    elif where == "pg":  # the SQL catalog on a real PostgreSQL
        lake = lakeml.connect(**postgres_lake_kwargs(request.getfixturevalue("postgres_db"), tmp_path))
    else:
        server, bucket = request.getfixturevalue("s3_bucket")
        lake = lakeml.connect(**s3_lake_kwargs(server, bucket, tmp_path))
    with lake:
        lake.init()
        spec = json.dumps(lake_spec(lake))
    env = {k: v for k, v in os.environ.items() if k != logs.ENV_LEVEL}
    workers = [subprocess.Popen([sys.executable, "-c", WRITER, spec, str(gate), str(i), str(procs), str(rounds)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for i in range(procs)]
    results = []
    try:
        for w in workers:
            out, err = w.communicate(timeout=300)
            results.append((w.returncode, out, err))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for code, out, err in results:
        assert code == 0 and err == "", f"a writer printed to stderr:\n{err[-3000:]}"
    stats = [json.loads(out) for _, out, _ in results]
    assert sum(_retries(s) for s in stats) > 0, "the writers really raced (and their retries were counted)"
    with open_spec(spec) as lake:
        assert lake.store.reload("metrics").scan().to_arrow().num_rows == procs * rounds * 200


def test_deleting_old_metadata_another_writer_deleted_is_not_a_warning(tmp_path, caplog):
    """With write.metadata.delete-after-commit, a client whose table is behind deletes old metadata
    files that another writer already deleted; pyiceberg warns about each one."""
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    reset_retry_stats()
    props = {"uri": f"sqlite:///{tmp_path}/catalog.db", "warehouse": tmp_path.as_uri()}
    mine, theirs = SqlCatalog("lakeml", **props), SqlCatalog("lakeml", **props)
    mine.create_namespace("t")
    schema = pa.schema([pa.field("n", pa.int64())])
    mine.create_table("t.x", schema, properties={"write.metadata.delete-after-commit.enabled": "true",
                                                   "write.metadata.previous-versions-max": "1"})
    for i in range(2):
        mine.load_table("t.x").append(pa.table({"n": [i]}, schema=schema))
    behind = mine.load_table("t.x")
    for i in range(2):
        theirs.load_table("t.x").append(pa.table({"n": [i]}, schema=schema))
    with caplog.at_level(logging.DEBUG):
        with behind.transaction() as tx:
            tx.set_properties({"k": "v"})
    gone = [r for r in caplog.records if r.getMessage().startswith("Failed to delete metadata file")]
    assert gone and all(r.name == "lakeml.pyiceberg" and r.levelno == logging.DEBUG for r in gone)
    assert retry_stats()[logs.PYICEBERG_CLEANUP]["files_left"] == len(gone)
    assert theirs.load_table("t.x").properties["k"] == "v"
    reset_retry_stats()


def test_log_level_setting(monkeypatch):
    assert logs.level_from_env("") is None and logs.level_from_env("debug") == logging.DEBUG
    assert logs.level_from_env("15") == 15
    with pytest.raises(InvalidInputError, match="LAKEML_LOG_LEVEL='loud'.*DEBUG, INFO, WARNING or ERROR"):
        logs.level_from_env("loud")
    root = logging.getLogger("lakeml")
    try:
        monkeypatch.setenv(logs.ENV_LEVEL, "INFO")
        logs.setup()
        assert root.level == logging.INFO and root.handlers and not root.propagate
        monkeypatch.delenv(logs.ENV_LEVEL)
        logs.setup()
        assert root.level == logging.NOTSET and not root.handlers and root.propagate
        assert sum(isinstance(f, logs.Demote) for f in logging.getLogger("pyiceberg.table").filters) == 1
        root.setLevel(logging.ERROR)  # the application's own choice survives a setup without the setting
        logs.setup()
        assert root.level == logging.ERROR
    finally:
        monkeypatch.delenv(logs.ENV_LEVEL, raising=False)
        logs.setup()
        root.setLevel(logging.NOTSET)


def test_a_bad_level_does_not_break_import():
    out = subprocess.run([sys.executable, "-c", "import lakeml; print('ok')"], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, logs.ENV_LEVEL: "loud"}, timeout=60)
    assert out.returncode == 0 and out.stdout == "ok\n"
    assert out.stderr.strip().splitlines() == [
        "lakeml: LAKEML_LOG_LEVEL='loud' is not a log level; use DEBUG, INFO, WARNING or ERROR (or unset it for "
        "warnings only)"]


def test_duckdb_draws_no_progress_bar_into_the_output(file_lake):
    """DuckDB's default draws a progress bar on stdout for any query over 2 s, even into a pipe,
    which would corrupt `lakeml sql -o json` output."""
    frame = file_lake.sql("SELECT current_setting('enable_progress_bar') AS bar")
    assert frame["bar"].to_list() == [False]


def test_unresolved_s3_region_is_not_a_warning(caplog):
    """pyiceberg asks AWS for a bucket's region when s3.region is unset; MinIO-style stores never
    answer, and the configured endpoint is used anyway. The message is logged the way pyiceberg
    logs it (its logger, its text: checked against pyiceberg's source so an upgrade shows here)."""
    import inspect

    import pyiceberg.io.pyarrow as pio

    assert 'logger.warning(f"Unable to resolve region for bucket {bucket}")' in inspect.getsource(pio)
    reset_retry_stats()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger(pio.__name__).warning("Unable to resolve region for bucket %s", "ml-lake")
    seen = [r for r in caplog.records if r.getMessage().startswith("Unable to resolve region")]
    assert seen and all(r.name == "lakeml.pyiceberg" and r.levelno == logging.DEBUG for r in seen)
    assert retry_stats()[logs.PYICEBERG_REGION]["unresolved"] == 1
    reset_retry_stats()
