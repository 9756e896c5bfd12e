"""Shared fixtures. Storage tests take ``lake`` and run once on file:// and once on
S3 over HTTP (moto's standalone server); the S3 servers live in tests/conftest_servers.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import lakeml
from lakeml.client import fluent

pytest_plugins = ["tests.conftest_servers"]

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PYICEBERG_HOME", str(ROOT / "tests" / "_no_pyiceberg_home"))  # ignore ~/.pyiceberg.yaml
if "LAKEML_CACHE_DIR" not in os.environ:  # stored metric summaries go to a folder of this test session
    import atexit
    import shutil
    import tempfile

    os.environ["LAKEML_CACHE_DIR"] = tempfile.mkdtemp(prefix="lakeml-test-cache-")
    atexit.register(shutil.rmtree, os.environ["LAKEML_CACHE_DIR"], True)


def s3_lake_kwargs(server, bucket: str, tmp_path: Path) -> dict:
    """connect() keyword arguments for a SQLite catalog whose warehouse is a bucket on ``server``."""
    return {"uri": f"sqlite:///{tmp_path / 'catalog.db'}", "warehouse": f"s3://{bucket}/wh",
            **server.props(bucket, "wh")}


@pytest.fixture
def file_lake(tmp_path):
    lake = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=0.2, commit_deadline=30)
    yield lake
    lake.close()


def postgres_lake_kwargs(uri: str, tmp_path: Path) -> dict:
    """connect() keyword arguments for a SQL catalog on PostgreSQL (``uri``) with a local warehouse."""
    return {"type": "sql", "uri": uri, "warehouse": (tmp_path / "wh").as_uri()}


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request, tmp_path):
    """A lake on a local folder, then on a moto S3 bucket over HTTP.

    ``@pytest.mark.parametrize("lake", ["pg"], indirect=True)`` gives a lake whose SQL catalog is a
    fresh database on a real PostgreSQL (tests/test_postgres.py)."""
    if request.param == "file":
        lk = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=0.2, commit_deadline=30)
    elif request.param == "pg":
        lk = lakeml.connect(commit_interval=0.2, commit_deadline=30,
                            **postgres_lake_kwargs(request.getfixturevalue("postgres_db"), tmp_path))
    else:
        server, bucket = request.getfixturevalue("s3_bucket")
        lk = lakeml.connect(commit_interval=0.2, commit_deadline=30, **s3_lake_kwargs(server, bucket, tmp_path))
    lk.kind = request.param
    yield lk
    lk.close()


@pytest.fixture
def fluent_lake(lake):
    """``lake`` installed as the fluent API's lake; the active-run stack is cleared afterwards."""
    fluent.set_lake(lake)
    yield lake
    with fluent._lock:
        fluent._stack.clear()
    fluent.set_lake(None)


@pytest.fixture
def py():
    """The interpreter of this test run, for subprocess tests."""
    return sys.executable
