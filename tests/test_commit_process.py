"""storage/commitproc.py: a committer whose appends run in a child process (what lakeml server does)."""

from __future__ import annotations

import time

import lakeml
from lakeml.server.run import commit_process_args
from lakeml.storage.commitproc import ChildAppender


def _wait_usable(child: ChildAppender, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not child.usable():
        assert time.monotonic() < deadline, "the commit process did not start"
        time.sleep(0.1)


def test_appends_run_in_the_child_and_fall_back_when_it_dies(tmp_path):
    wh = tmp_path / "wh"
    lake = lakeml.connect(warehouse=wh)
    child = ChildAppender("lakeml.server.run:open_commit_store", commit_process_args(None, wh, None, {}))
    try:
        _wait_usable(child)
        lake.committer.appender = child
        run = lake.create_run("child")
        for step in range(100):
            lake.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
        lake.flush()
        assert child.appends >= 2  # runs, experiments, metrics... went through the child
        before = child.appends
        child._proc.kill()  # the child dies: the next commit is done in-process
        child._proc.join(10)
        for step in range(100, 150):
            lake.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
        lake.set_terminated(run.run_id)
        lake.flush()
        assert child.appends == before and not child.usable()
    finally:
        lake.committer.appender = None
        child.close()
        lake.close()
    fresh = lakeml.connect(warehouse=wh)  # another process's view: every point once
    try:
        steps = fresh.sql(f"SELECT step FROM lakeml.metrics WHERE run_id = '{run.run_id}' ORDER BY step").rows()
        assert [s for (s,) in steps] == list(range(150))
        assert fresh.get_run(run.run_id).status.name == "FINISHED"
    finally:
        fresh.close()


def test_a_child_that_cannot_open_the_lake_leaves_commits_in_process(tmp_path):
    child = ChildAppender("lakeml.server.run:no_such_factory", {})
    deadline = time.monotonic() + 60
    while child._proc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not child.usable()  # it reported the failure (or died): never used
    child.close()
