"""Checkpoints: stored per step, pruned by the retention policy (last K plus best N by a metric),
deleted from storage, and the pruning recorded in the checkpoints table."""

from __future__ import annotations

import pytest

import lakeml
from lakeml.errors import ConflictError, InvalidInputError, NotFoundError
from lakeml.registry.checkpoints import Checkpoint, RetentionPolicy
from tests.workers.lakes import reopen

LOSSES = [0.9, 0.5, 0.7, 0.3, 0.6, 0.8, 0.65]  # best (min) is step 3, then step 1


def stored_steps(lake, run_id) -> list[int]:
    return sorted(int(a.path.rsplit("-", 1)[1]) for a in lake.list_artifacts(run_id, "checkpoints") if a.is_dir)


def test_retention_keeps_last_k_plus_best_n_and_records_pruning(lake):
    run = lake.create_run("ckpt")
    for step, loss in enumerate(LOSSES):
        ck = lake.log_checkpoint(run.id, {"weights": [step] * 3, "epoch": step}, step=step,
                                 metric={"val_loss": loss}, keep_last=2, keep_best=2, mode="min")
        assert ck.metric_key == "val_loss" and ck.uri.endswith(f"checkpoints/step-{step}")
    keep = [1, 3, 5, 6]  # best two by val_loss (3, 1) + last two (5, 6)
    assert stored_steps(lake, run.id) == keep  # the others are gone from storage
    assert [c.step for c in lake.list_checkpoints(run.id)] == keep
    assert [c.step for c in lake.list_checkpoints(run.id, include_pruned=True)] == list(range(7))
    pruned = lake.sql_arrow("SELECT step, reason FROM lakeml.checkpoints WHERE event = 'pruned' ORDER BY step")
    assert pruned["step"].to_pylist() == [0, 2, 4]
    assert all("not among the last 2 steps nor the best 2 by val_loss (min)" in r for r in pruned["reason"].to_pylist())
    assert lake.load_checkpoint(run.id, "best") == {"weights": [3, 3, 3], "epoch": 3}
    assert lake.load_checkpoint(run.id, "latest")["epoch"] == 6
    assert lake.load_checkpoint(run.id, 5)["epoch"] == 5
    with pytest.raises(NotFoundError, match="no stored checkpoint at step 2"):
        lake.load_checkpoint(run.id, 2)


def test_files_folders_mode_max_and_a_resumed_run(file_lake, tmp_path):
    lake = file_lake
    run = lake.create_run("ckpt-files")
    for step, acc in enumerate([0.5, 0.9, 0.6]):
        f = tmp_path / f"epoch{step}.bin"
        f.write_bytes(bytes([step]) * 100)
        lake.log_checkpoint(run.id, f, step=step, metric=acc, metric_key="val_acc", mode="max", keep_last=1,
                            keep_best=1)
    assert stored_steps(lake, run.id) == [1, 2]
    best = lake.load_checkpoint(run.id, "best", dst_path=tmp_path / "restore")
    assert best.name == "epoch1.bin" and best.read_bytes() == bytes([1]) * 100
    # another client (a resumed job) continues the same policy from what is stored
    lake.flush()
    other = reopen(lake)
    try:
        folder = tmp_path / "state"
        folder.mkdir()
        (folder / "opt.txt").write_text("adam")
        (folder / "w.txt").write_text("w")
        other.log_checkpoint(run.id, folder, step=3, metric=0.7, metric_key="val_acc", mode="max", keep_last=1,
                             keep_best=1)
        assert stored_steps(other, run.id) == [1, 3]
        got = other.load_checkpoint(run.id, 3, dst_path=tmp_path / "restore3")
        assert sorted(p.name for p in got.iterdir()) == ["opt.txt", "w.txt"]
    finally:
        other.close()


def test_fluent_log_checkpoint(fluent_lake):
    with lakeml.start_run(experiment="fluent-ckpt") as run:
        for step in range(4):
            lakeml.log_checkpoint({"step": step}, step=step, metric=1.0 / (step + 1), keep_last=1, keep_best=0)
        assert lakeml.load_checkpoint("latest") == {"step": 3}
    assert [c.step for c in fluent_lake.list_checkpoints(run.id)] == [3]
    assert lakeml.load_checkpoint(3, run_id=run.id) == {"step": 3}


def test_checkpoint_bad_input(file_lake, tmp_path):
    lake = file_lake
    run = lake.create_run("ckpt-bad")
    lake.log_checkpoint(run.id, {"a": 1}, step=1)
    with pytest.raises(ConflictError, match="already has a checkpoint at step 1"):
        lake.log_checkpoint(run.id, {"a": 2}, step=1)
    with pytest.raises(NotFoundError, match="does not exist"):
        lake.log_checkpoint(run.id, tmp_path / "missing.pt", step=2)
    with pytest.raises(InvalidInputError, match="mode"):
        lake.log_checkpoint(run.id, {}, step=3, mode="best")
    with pytest.raises(InvalidInputError, match="at least 1"):
        lake.log_checkpoint(run.id, {}, step=3, keep_last=0, keep_best=0)
    with pytest.raises(InvalidInputError, match="one-item dict"):
        lake.log_checkpoint(run.id, {}, step=3, metric={"a": 1.0, "b": 2.0})
    with pytest.raises(InvalidInputError, match="must be (an|one) integer"):
        lake.log_checkpoint(run.id, {}, step="three")
    with pytest.raises(NotFoundError, match="no stored checkpoints"):
        lake.load_checkpoint(lake.create_run("empty").id)
    assert [c.step for c in lake.list_checkpoints(run.id)] == [1]


def test_policy_is_a_pure_function():
    def ck(step, x):
        return Checkpoint("r" * 32, step, f"checkpoints/step-{step}", "u", "loss", x)

    cks = [ck(0, 0.1), ck(1, float("nan")), ck(2, None), ck(3, 0.5), ck(4, 0.4)]
    kept, pruned = RetentionPolicy(keep_last=1, keep_best=2, mode="min").split(cks)
    assert [c.step for c in kept] == [0, 4]
    assert [c.step for c, _ in pruned] == [1, 2, 3]
    kept, _ = RetentionPolicy(keep_last=0, keep_best=1, mode="max").split(cks)
    assert [c.step for c in kept] == [3]
