"""Artifacts: files and folders stored beside the tables, recorded with size and sha256, read back."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import lakeml
from lakeml import InvalidInputError, NotFoundError
from tests.workers.lakes import lake_spec, plain_catalog


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded(lake, run_id: str) -> dict[str, dict]:
    """The artifacts table rows of a run (after a flush), read with plain pyiceberg."""
    lake.flush()
    tbl = plain_catalog(lake_spec(lake)).load_table("lakeml.artifacts")
    return {r["path"]: r for r in tbl.scan(row_filter=f"run_id == '{run_id}'").to_arrow().to_pylist()}


def test_log_artifact_file_records_size_and_sha256(lake, tmp_path):
    src = tmp_path / "model.pkl"
    data = os.urandom(3000)
    src.write_bytes(data)
    run = lake.create_run("arts")
    assert lake.log_artifact(run.run_id, src) == "model.pkl"
    assert lake.log_artifact(run.run_id, src, artifact_path="models/best") == "models/best/model.pkl"
    lake.flush()

    rows = _recorded(lake, run.run_id)
    assert set(rows) == {"model.pkl", "models/best/model.pkl"}
    for path, row in rows.items():
        assert (row["size"], row["sha256"]) == (len(data), _sha(data))
        # the object lives at <artifact root>/<experiment id>/<run id>/<path>
        assert row["uri"] == f"{lake.config.artifact_root}/{run.experiment_id}/{run.run_id}/{path}"
        assert row["logged_at"] is not None

    listed = lake.list_artifacts(run.run_id)
    assert [(a.path, a.is_dir) for a in listed] == [("model.pkl", False), ("models", True)]
    assert listed[0].size == len(data)
    assert [a.path for a in lake.list_artifacts(run.run_id, "models/best")] == ["models/best/model.pkl"]

    out = lake.download_artifacts(run.run_id, "models/best/model.pkl", tmp_path / "dl")
    assert Path(out).read_bytes() == data


def test_log_artifacts_folder_round_trip(lake, tmp_path):
    src = tmp_path / "out"
    files = {"config.json": b'{"a": 1}', "plots/loss.png": os.urandom(10_000), "plots/deep/er/x.txt": b"x",
             "empty.txt": b""}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    run = lake.create_run("arts")
    paths = lake.log_artifacts(run.run_id, src, artifact_path="outputs")
    assert sorted(paths) == sorted(f"outputs/{p}" for p in files)

    rows = _recorded(lake, run.run_id)
    assert {p: (r["size"], r["sha256"]) for p, r in rows.items()} == \
        {f"outputs/{p}": (len(d), _sha(d)) for p, d in files.items()}

    whole = Path(lake.download_artifacts(run.run_id, dst_path=tmp_path / "all"))
    for rel, data in files.items():
        assert (whole / "outputs" / rel).read_bytes() == data
    plots = Path(lake.download_artifacts(run.run_id, "outputs/plots", tmp_path / "plots"))
    assert sorted(p.relative_to(plots).as_posix() for p in plots.rglob("*") if p.is_file()) == \
        ["deep/er/x.txt", "loss.png"]
    tmp_default = Path(lake.download_artifacts(run.run_id, "outputs/config.json"))  # to a fresh temp folder
    assert tmp_default.read_bytes() == files["config.json"]


def test_large_artifact_streams_in_parts(lake, tmp_path):
    """A file larger than the 8 MiB chunk goes up in parts (a multipart upload on S3) and comes back intact."""
    src = tmp_path / "big.bin"
    data = os.urandom(9 * 1024 * 1024) + b"tail"
    src.write_bytes(data)
    run = lake.create_run("arts")
    lake.log_artifact(run.run_id, src)
    row = _recorded(lake, run.run_id)["big.bin"]
    assert (row["size"], row["sha256"]) == (len(data), _sha(data))
    assert Path(lake.download_artifacts(run.run_id, "big.bin", tmp_path / "dl")).read_bytes() == data
    if lake.kind == "s3":
        import boto3

        props = lake.config.properties
        s3 = boto3.client("s3", endpoint_url=props["s3.endpoint"], aws_access_key_id=props["s3.access-key-id"],
                          aws_secret_access_key=props["s3.secret-access-key"], region_name="us-east-1")
        bucket, key = row["uri"][len("s3://"):].split("/", 1)
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        assert "-" in etag, f"expected a multipart upload, got ETag {etag}"


def test_fluent_log_artifact(fluent_lake, tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"model")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("a")
    with lakeml.start_run(experiment="arts") as run:
        lakeml.log_artifact(str(tmp_path / "model.pkl"))
        lakeml.log_artifacts(str(tmp_path / "dir"), "d")
    assert sorted(_recorded(fluent_lake, run.id)) == ["d/a.txt", "model.pkl"]


def test_missing_artifacts_are_not_found(lake, tmp_path):
    run = lake.create_run("arts")
    with pytest.raises(NotFoundError, match="is not a file"):
        lake.log_artifact(run.run_id, tmp_path / "nope.bin")
    with pytest.raises(NotFoundError, match="not a folder"):
        lake.log_artifacts(run.run_id, tmp_path / "nope")
    with pytest.raises(NotFoundError, match="list_artifacts"):
        lake.download_artifacts(run.run_id, "nope.bin", tmp_path / "dl")
    assert lake.list_artifacts(run.run_id) == []
    (tmp_path / "folder").mkdir()
    with pytest.raises(InvalidInputError, match="log_artifacts"):
        lake.log_artifact(run.run_id, tmp_path / "folder")
