"""Bad input gets a typed lakeml error whose message names the value, the rule and the fix;
nothing is buffered by a call that fails, and a dead S3 endpoint loses nothing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid

import pytest

import lakeml
from lakeml import CommitError, ConflictError, InvalidInputError, LakemlError, NotFoundError, StorageError

BAD_KEYS = [
    ("", "empty"),
    ("   ", "empty"),
    ("x" * 251, "251 characters long; the limit is 250"),
    ("bad\nkey", "use letters, digits"),
    ("semi;colon", "use letters, digits"),
    ("../up", "without '..' segments"),
    ("/abs", "not starting with '/'"),
    (12, "must be a string, got int"),
    (None, "must be a string, got NoneType"),
]


@pytest.fixture
def run_id(file_lake):
    return file_lake.create_run("bad").run_id


@pytest.mark.parametrize("key,msg", BAD_KEYS)
def test_bad_keys(file_lake, run_id, key, msg):
    for call in (lambda: file_lake.log_metric(run_id, key, 1.0), lambda: file_lake.log_param(run_id, key, 1),
                 lambda: file_lake.set_tag(run_id, key, "v")):
        with pytest.raises(InvalidInputError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            call()
    assert file_lake.committer.pending_rows() <= 2  # only the run's own RUNNING/experiment rows


@pytest.mark.parametrize("value,msg", [
    ("0.5", "metric 'm' got str '0.5'; metric values must be numbers"),
    (None, "got NoneType None"),
    (True, "got bool True"),
    ([1.0], "got list"),
    ({"a": 1}, "got dict"),
])
def test_bad_metric_values(file_lake, run_id, value, msg):
    with pytest.raises(InvalidInputError, match=msg.replace("[", r"\[").replace("(", r"\(")):
        file_lake.log_metric(run_id, "m", value)
    assert "log_param or set_tag" in str(pytest.raises(InvalidInputError, file_lake.log_metric, run_id, "m",
                                                       value).value)


def test_numpy_scalars_are_numbers(file_lake, run_id):
    np = pytest.importorskip("numpy")
    file_lake.log_metric(run_id, "m", np.float32(0.5), step=np.int64(3))
    file_lake.log_metric(run_id, "m", np.array(1.5), step=4)
    assert file_lake.get_metric_history(run_id, "m")["value"].to_list() == [0.5, 1.5]


@pytest.mark.parametrize("step,msg", [(1.5, "must be one integer, got float 1.5"), ("3", "must be one integer"),
                                      (2**63, "out of the 64-bit integer range")])
def test_bad_steps(file_lake, run_id, step, msg):
    with pytest.raises(InvalidInputError, match=msg):
        file_lake.log_metric(run_id, "m", 1.0, step=step)


@pytest.mark.parametrize("ts,msg", [(-1, "out of range; pass milliseconds since 1970"),
                                    ("now", "must be milliseconds since the epoch"),
                                    (float("nan"), "must be milliseconds")])
def test_bad_timestamps(file_lake, run_id, ts, msg):
    with pytest.raises(InvalidInputError, match=msg):
        file_lake.log_metric(run_id, "m", 1.0, timestamp=ts)


def test_bad_param_and_tag_values(file_lake, run_id):
    class Opaque:
        pass

    with pytest.raises(InvalidInputError, match="param 'p' has a value of type Opaque that has no stable text form"):
        file_lake.log_param(run_id, "p", Opaque())
    with pytest.raises(InvalidInputError, match="6001 characters; the limit is 6000.*artifact"):
        file_lake.log_param(run_id, "p", "x" * 6001)
    with pytest.raises(InvalidInputError, match="tag 't' value must be a string"):
        file_lake.set_tag(run_id, "t", {"a": 1})
    with pytest.raises(InvalidInputError, match="NUL"):
        file_lake.set_tag(run_id, "t", "a\x00b")


def test_changed_param_is_a_conflict(file_lake, run_id):
    file_lake.log_param(run_id, "lr", 0.1)
    with pytest.raises(ConflictError) as e:
        file_lake.log_param(run_id, "lr", 0.01)
    text = str(e.value)
    assert "'lr'" in text and "'0.1'" in text and "'0.01'" in text and "write-once" in text and "new run" in text


@pytest.mark.parametrize("path", ["..", "../escape", "a/../../b", "/etc", "/abs/path", "C:/x", "s3://b/k", "a/./b"])
def test_artifact_paths_cannot_leave_the_run(file_lake, run_id, tmp_path, path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "g.txt").write_text("y")
    for call in (lambda: file_lake.log_artifact(run_id, f, artifact_path=path),
                 lambda: file_lake.log_artifacts(run_id, tmp_path / "d", artifact_path=path),
                 lambda: file_lake.download_artifacts(run_id, path, tmp_path / "out"),
                 lambda: file_lake.list_artifacts(run_id, path)):
        with pytest.raises(InvalidInputError, match="absolute|'\\.' or '\\.\\.'|cannot leave"):
            call()
    assert file_lake.list_artifacts(run_id) == []
    assert not (tmp_path / "out").exists()


def test_missing_and_malformed_run_ids(file_lake):
    ghost = uuid.uuid4().hex
    with pytest.raises(NotFoundError, match=f"run {ghost} does not exist.*lakeml runs list"):
        file_lake.get_run(ghost)
    for call in (lambda: file_lake.log_metric(ghost, "m", 1.0), lambda: file_lake.log_param(ghost, "p", 1),
                 lambda: file_lake.set_terminated(ghost), lambda: file_lake.log_artifact(ghost, __file__)):
        with pytest.raises(NotFoundError):
            call()
    with pytest.raises(InvalidInputError, match="not a lakeml run id.*32 lowercase hex"):
        file_lake.get_run("not-a-run")
    with pytest.raises(InvalidInputError):
        file_lake.log_metric("x' OR 1=1 --", "m", 1.0)
    assert isinstance(NotFoundError("x"), LookupError) and isinstance(InvalidInputError("x"), ValueError)


def test_other_bad_calls(file_lake, run_id):
    with pytest.raises(InvalidInputError, match="unknown run status 'DONE'; use FINISHED, FAILED or KILLED"):
        file_lake.set_terminated(run_id, "DONE")
    with pytest.raises(InvalidInputError, match="experiment name must be a non-empty string"):
        file_lake.create_run("")
    with pytest.raises(InvalidInputError, match="max_results"):
        file_lake.search_runs(max_results=0)
    with pytest.raises(InvalidInputError, match="cannot parse search filter|expected"):
        file_lake.search_runs(filter_string="metrics.auc >> 1; DROP TABLE x")
    with pytest.raises(InvalidInputError, match="unknown entity"):
        file_lake.search_runs(filter_string="foo.bar = 1")
    with pytest.raises(NotFoundError, match="no experiment named 'nope'"):
        file_lake.get_experiment_by_name("nope")


# -- a dead S3 endpoint -----------------------------------------------------------------------

# How a user makes a dead endpoint fail fast: pyiceberg's own S3 keys, 3 tries per request
# (lakeml's default retries each request 8 times with backoff, which rides out S3 hiccups
# but takes minutes to give up on an endpoint that is simply not there).
FAIL_FAST = {"s3.retry-strategy-impl": "pyarrow.fs.AwsDefaultS3RetryStrategy", "s3.connect-timeout": "1"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_s3_endpoint_raises_and_keeps_the_data(tmp_path):
    """Nothing listens on the endpoint: flush raises a CommitError within its deadline and the rows
    stay pending; once an S3 server comes up on that endpoint, the same flush commits them all."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    props = {"s3.endpoint": endpoint, "s3.access-key-id": "testing", "s3.secret-access-key": "testing",
             "s3.region": "us-east-1", "s3.path-style-access": "true", **FAIL_FAST,
             "lakeml.spool-dir": str(tmp_path / "spool")}
    lake = lakeml.connect(uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse="s3://late/wh",
                          commit_interval=3600, commit_deadline=2, **props)
    server = None
    try:
        run = lake.create_run("dead")  # buffered: no I/O yet
        for step in range(1000):
            lake.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
        pending = lake.committer.pending_rows()
        assert pending >= 1002

        with pytest.raises(CommitError) as e:  # how long giving up takes is measured, not asserted
            lake.flush(timeout=2)
        said = str(e.value) + str(e.value.__cause__)  # the endpoint, as ours or as the S3 client writes it
        assert "lakeml doctor" in str(e.value) and "kept" in str(e.value)
        assert f"127.0.0.1:{port}" in said or f"127.0.0.1 port {port}" in said
        assert lake.committer.pending_rows() == pending, "nothing is dropped"
        with pytest.raises(CommitError):  # and again: still nothing raised silently, still pending
            lake.flush(timeout=1)
        assert lake.committer.pending_rows() == pending

        # the endpoint comes back: same port, a bucket, and the pending rows go in exactly once
        server = _moto_on(port, tmp_path)
        server.create_bucket("late")
        lake.flush(timeout=60)
        assert lake.committer.pending_rows() == 0
        hist = lake.get_metric_history(run.run_id, "loss")
        assert hist.height == 1000 and hist["step"].to_list() == list(range(1000))
        assert lake.get_run(run.run_id).experiment_name == "dead"
    finally:
        with contextlib.suppress(CommitError):
            lake.close(timeout=1)  # (if the test failed early: give up, do not retry at exit)
        if server is not None:
            server.stop()


def _moto_on(port: int, base) -> "object":
    """moto's standalone server on a given port (the fixture picks its own)."""
    from tests.servers import MotoServer

    server = MotoServer.__new__(MotoServer)
    server._make_dir(base)
    server.port = port
    server.endpoint = f"http://127.0.0.1:{port}"
    server._spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], server.dir / "moto.log")
    from tests.servers import _http_status

    server._wait(lambda: _http_status(server.endpoint + "/moto-api/") is not None, time.monotonic() + 30)
    return server


def test_dead_s3_endpoint_for_artifacts_is_a_storage_error(tmp_path):
    port = _free_port()
    lake = lakeml.connect(uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse="s3://nowhere/wh",
                          commit_deadline=1, **{"s3.endpoint": f"http://127.0.0.1:{port}", "s3.access-key-id": "k",
                                                "s3.secret-access-key": "s", "s3.region": "us-east-1", **FAIL_FAST,
                                                "lakeml.spool-dir": str(tmp_path / "spool")})
    try:
        run = lake.create_run("dead")
        f = tmp_path / "model.pkl"
        f.write_bytes(b"x" * 10)
        with pytest.raises(StorageError, match="could not store artifact 'model.pkl' at s3://nowhere/wh/"):
            lake.log_artifact(run.run_id, f)
    finally:
        with contextlib.suppress(CommitError):
            lake.close(timeout=1)


def test_no_silent_loss_at_exit_when_storage_is_dead(tmp_path):
    """A process that commits at exit (LAKEML_EXIT_DRAIN=inline) and cannot says so on stderr (it does not
    hang or pass silently). In the default mode the rows stay in the fsynced spool for the drain helper."""
    port = _free_port()
    code = f"""
import lakeml
lake = lakeml.connect(uri="sqlite:///{tmp_path / 'c.db'}", warehouse="s3://b/wh", commit_deadline=1,
                      commit_interval=3600, **{{"s3.endpoint": "http://127.0.0.1:{port}", "s3.access-key-id": "k",
                      "s3.secret-access-key": "s", "s3.region": "us-east-1", **{FAIL_FAST!r},
                      "lakeml.spool-dir": {str(tmp_path / 'spool')!r}}})
run = lake.create_run("x")
lake.log_metric(run.run_id, "m", 1.0)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LAKEML_EXIT_DRAIN": "inline"})
    assert "could not commit" in proc.stderr, proc.stderr[-2000:]
