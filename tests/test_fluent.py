"""The fluent API: module-level verbs with MLflow's semantics, logging into the active run."""

from __future__ import annotations

import threading

import pytest

import lakeml
from lakeml import ConflictError, InvalidInputError, LakemlError, RunStatus


def test_start_run_logs_and_finishes(fluent_lake):
    with lakeml.start_run(experiment="churn", run_name="xgb-depth6", tags={"team": "growth"}) as run:
        assert lakeml.active_run() is run and run.info.status is RunStatus.RUNNING
        lakeml.log_params({"lr": 0.1, "max_depth": 6})
        lakeml.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(ConflictError, match="write-once"):
            lakeml.log_param("lr", 0.2)
        for step in range(100):
            lakeml.log_metric("loss", 1.0 / (step + 1), step=step)
        lakeml.log_metrics({"auc": 0.9, "acc": 0.8}, step=99)
        lakeml.set_tag("stage", "dev")
        lakeml.set_tags({"owner": "ana", "stage": "prod"})
    assert lakeml.active_run() is None
    got = fluent_lake.get_run(run.id)
    assert got.status is RunStatus.FINISHED and got.end_time is not None and got.error is None
    assert got.params == {"lr": "0.1", "max_depth": "6"}
    assert got.metrics == {"loss": 0.01, "auc": 0.9, "acc": 0.8}
    assert got.tags == {"team": "growth", "stage": "prod", "owner": "ana"}
    assert fluent_lake.get_metric_history(run.id, "loss").height == 100


def test_end_run_commits_without_context_manager(fluent_lake):
    run = lakeml.start_run(experiment="plain")
    lakeml.log_metric("m", 1.0)
    lakeml.end_run(wait=True)
    assert fluent_lake.committer.pending_rows() == 0  # end_run(wait=True) returns once committed
    assert fluent_lake.get_run(run.id).status is RunStatus.FINISHED
    run2 = lakeml.start_run(experiment="plain")
    lakeml.end_run("KILLED")  # hands off without waiting; a read in this process still sees it
    assert fluent_lake.get_run(run2.id).status is RunStatus.KILLED
    lakeml.end_run()  # no active run: a no-op, as in MLflow


def test_exception_fails_the_run_and_keeps_the_message(fluent_lake):
    with pytest.raises(ZeroDivisionError):
        with lakeml.start_run(experiment="boom") as run:
            lakeml.log_metric("before", 1.0)
            1 / 0
    got = fluent_lake.get_run(run.id)
    assert got.status is RunStatus.FAILED
    assert got.error == "ZeroDivisionError: division by zero"
    assert got.metrics == {"before": 1.0}, "what was logged before the failure is kept"


def test_keyboard_interrupt_in_the_block_kills_the_run(fluent_lake):
    with pytest.raises(KeyboardInterrupt):
        with lakeml.start_run(experiment="ctrl-c") as run:
            raise KeyboardInterrupt
    assert fluent_lake.get_run(run.id).status is RunStatus.KILLED


def test_nested_runs(fluent_lake):
    with lakeml.start_run(experiment="sweep", run_name="parent") as parent:
        with pytest.raises(InvalidInputError, match="nested=True"):
            lakeml.start_run(run_name="oops")
        for i in range(2):
            with lakeml.start_run(run_name=f"child-{i}", nested=True) as child:
                assert lakeml.active_run() is child
                lakeml.log_param("i", i)
                with lakeml.start_run(run_name=f"grandchild-{i}", nested=True) as grandchild:
                    lakeml.log_metric("g", i)
            assert lakeml.active_run() is parent
        lakeml.log_metric("best", 1.0)
    kids = fluent_lake.search_runs("sweep", f"attributes.parent_run_id = '{parent.id}'",
                                   order_by=["attributes.run_name"])
    assert kids["run_name"].to_list() == ["child-0", "child-1"]
    assert set(kids["status"].to_list()) == {"FINISHED"}
    g = fluent_lake.get_run(grandchild.id)
    assert g.parent_run_id == child.id and g.experiment_name == "sweep", "children inherit the experiment"
    assert fluent_lake.get_run(parent.id).metrics == {"best": 1.0}


def test_child_failure_does_not_end_the_parent(fluent_lake):
    with lakeml.start_run(experiment="nest-fail") as parent:
        with pytest.raises(ValueError):
            with lakeml.start_run(nested=True) as child:
                raise ValueError("bad fold")
        assert lakeml.active_run() is parent
    assert fluent_lake.get_run(child.id).status is RunStatus.FAILED
    assert fluent_lake.get_run(child.id).error == "ValueError: bad fold"
    assert fluent_lake.get_run(parent.id).status is RunStatus.FINISHED


def test_resume_a_run_by_id(fluent_lake):
    with lakeml.start_run(experiment="resume") as run:
        lakeml.log_param("p", 1)
        lakeml.log_metric("m", 1.0, step=0)
    with lakeml.start_run(run_id=run.id):
        lakeml.log_metric("m", 2.0, step=1)
        with pytest.raises(ConflictError):
            lakeml.log_param("p", 2)  # write-once holds across the resume
    hist = fluent_lake.get_metric_history(run.id, "m")
    assert hist["value"].to_list() == [1.0, 2.0]
    assert fluent_lake.get_run(run.id).status is RunStatus.FINISHED


def test_logging_without_active_run_is_a_clear_error(fluent_lake):
    for call in (lambda: lakeml.log_metric("m", 1.0), lambda: lakeml.log_param("p", 1),
                 lambda: lakeml.set_tag("t", "v"), lambda: lakeml.log_artifact("x")):
        with pytest.raises(LakemlError, match="no active run"):
            call()


def test_threads_log_into_the_run_of_the_main_thread(fluent_lake):
    def worker(k: int) -> None:
        for step in range(500):
            lakeml.log_metric(f"w{k}", float(step), step=step)

    with lakeml.start_run(experiment="threads") as run:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    hist = fluent_lake.get_metric_history(run.id)
    assert hist.height == 2000
    assert hist.group_by("key").len().sort("key")["len"].to_list() == [500] * 4


def test_flush_returns_once_committed(fluent_lake):
    with lakeml.start_run(experiment="flush") as run:
        lakeml.log_metric("m", 3.0)
        lakeml.flush()
        assert fluent_lake.committer.pending_rows() == 0
        # committed: a plain reader of the table sees the point while the run is still active
        from tests.workers.lakes import lake_spec, plain_catalog

        tbl = plain_catalog(lake_spec(fluent_lake)).load_table("lakeml.metrics")
        assert tbl.scan(row_filter=f"run_id == '{run.id}'").to_arrow()["value"].to_pylist() == [3.0]


def test_experiment_from_environment(fluent_lake, monkeypatch):
    monkeypatch.setenv("LAKEML_EXPERIMENT", "from-env")
    with lakeml.start_run() as run:
        pass
    assert fluent_lake.get_run(run.id).experiment_name == "from-env"
