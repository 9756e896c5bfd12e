"""pytest plugin: real S3 and PostgreSQL servers (see tests/servers.py) as fixtures.

Load with ``pytest_plugins = ["tests.conftest_servers"]`` or ``-p tests.conftest_servers``.
Session fixtures start one server per pytest(-xdist) worker process on free ports and stop it
by pid at session end; their logs stay in pytest's basetemp (PostgreSQL's folder is a temp folder
of its own, removed at stop; tests get one database each). Nothing is skipped: a missing moto,
weed, PostgreSQL or psycopg2 fails the test with a clear message.
"""

from __future__ import annotations

import importlib.util
import uuid

import pytest

from tests.servers import MotoServer, PostgresServer, SeaweedServer, postgres_bindir, weed_binary


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A running :class:`~tests.servers.MotoServer` (S3 over HTTP at ``.endpoint``)."""
    if importlib.util.find_spec("moto") is None:
        pytest.fail("moto is not installed: pip install 'moto[server]'", pytrace=False)
    server = MotoServer(base_dir=tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory):
    """A running :class:`~tests.servers.SeaweedServer`: S3 + Iceberg REST, table bucket ``warehouse``."""
    try:
        weed_binary()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    server = SeaweedServer(base_dir=tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A running :class:`~tests.servers.PostgresServer` (as the ``postgres`` user when run as root)."""
    try:
        postgres_bindir()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    if importlib.util.find_spec("psycopg2") is None:
        pytest.fail("psycopg2 is not installed: pip install 'lakeml[postgres]'", pytrace=False)
    server = PostgresServer()
    yield server
    server.stop()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def s3_bucket(moto_server):
    """``(moto_server, bucket_name)``: a fresh, empty bucket on moto for this test."""
    yield moto_server, moto_server.create_bucket(_unique("t"))


@pytest.fixture
def postgres_db(postgres_server):
    """The SQLAlchemy URI (``postgresql+psycopg2://...``) of a fresh database for this test."""
    yield postgres_server.create_database(_unique("t").replace("-", "_"))


@pytest.fixture
def seaweed_table_bucket(seaweed_server):
    """``(seaweed_server, table_bucket)``: a fresh S3 Tables bucket for the REST catalog."""
    yield seaweed_server, seaweed_server.create_table_bucket(_unique("tb"))


@pytest.fixture
def lakeml_server(tmp_path):
    """A real ``lakeml server`` on a free loopback port over a fresh warehouse (``tmp_path/'wh'``), no tokens.

    Use ``server.url``, ``server.warehouse``; it is stopped (SIGTERM, then SIGKILL) after the test."""
    from tests.servers import LakemlServer

    server = LakemlServer(tmp_path / "wh", base_dir=tmp_path)
    yield server
    server.stop()
