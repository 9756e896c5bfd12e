"""``lakeml doctor``: resolve the configuration and check each part of the lake, one by one.

Checks: the catalog answers; the object store under the artifact root (and the warehouse) takes a
write, a read and a delete; the lakeml tables exist or can be created; DuckDB loads its extensions
from site-packages and reads a lakeml table. A check that cannot run because an earlier one failed
is reported as failed with the reason. Object-store probes use short timeouts and a single attempt,
so a dead endpoint fails in seconds.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False  # passed, but something needs attention (shown as WARN)

    def __post_init__(self) -> None:
        from lakeml.masking import mask_secrets

        self.detail = mask_secrets(self.detail)  # e.g. a catalog URI's password


class Warn(Exception):
    """Raised by a check that passes with a warning."""


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except Warn as w:
        return Check(name, True, " ".join(str(w).split()), warn=True)
    except Exception as e:  # every failure becomes a FAIL line, never a traceback
        return Check(name, False, _one_line(e))


def probe_storage(uri_root: str, props: dict[str, str], timeout: float) -> str:
    """Write, read back and delete a small object under ``uri_root``; returns what was done."""
    from urllib.parse import urlparse

    from lakeml.storage.objectstore import filesystem

    uri = f"{uri_root.rstrip('/')}/.lakeml-doctor-{uuid.uuid4().hex[:12]}"
    fs, path = filesystem(uri, props, timeout=timeout, attempts=1)
    payload = b"lakeml doctor probe\n"
    local = urlparse(uri).scheme in ("", "file")
    if local:
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    try:
        with fs.open_output_stream(path) as f:
            f.write(payload)
    except OSError as e:
        bucket = urlparse(uri).netloc
        hint = "check the folder's permissions" if local else (
            f"check s3.endpoint ({props.get('s3.endpoint') or 'AWS default'}), the access keys, and that bucket "
            f"{bucket!r} exists")
        raise OSError(f"cannot write {uri}: {' '.join(str(e).split())}; {hint}") from e
    with fs.open_input_stream(path) as f:
        back = f.read()
    if back != payload:
        raise OSError(f"read back {len(back)} bytes from {uri}, expected the {len(payload)} written")
    fs.delete_file(path)
    return f"wrote, read and deleted a probe object under {uri_root}"


def _probe_roots(cfg: Any) -> list[str]:
    roots = [cfg.artifact_root]
    wh = cfg.warehouse or ""
    if "://" in wh and not cfg.artifact_root.startswith(wh.rstrip("/")):
        roots.append(wh)
    return roots


def run_checks(catalog: str | None, warehouse: str | None, *, timeout: float = 5.0) -> dict[str, Any]:
    """Run every check; returns ``{"config": {...}, "checks": [...], "ok": bool}``."""
    from lakeml.storage.config import resolve
    from lakeml.storage.retry import retry_stats

    retries_before = retry_stats()  # the retries check reports only what these checks caused
    checks: list[Check] = []
    try:
        cfg = resolve(catalog, warehouse=warehouse)
    except Exception as e:
        checks.append(Check("configuration", False, _one_line(e)))
        return _report({}, checks)
    checks.append(Check("configuration", True,
                        "embedded warehouse (SQLite catalog)" if cfg.embedded else f"catalog {cfg.catalog_name!r}"))

    state: dict[str, Any] = {}

    def catalog_check() -> str:
        from lakeml.storage.tables import open_catalog

        cat = open_catalog(cfg)
        namespaces = cat.list_namespaces()
        state["catalog"] = cat
        kind = cfg.properties.get("type", "?")
        where = cfg.properties.get("uri", "")
        return f"{kind} catalog {where} answered ({len(namespaces)} namespace(s))".replace("  ", " ")

    checks.append(_run("catalog", catalog_check))

    storage_ok = True
    for i, root in enumerate(_probe_roots(cfg)):
        c = _run("storage" if i == 0 else "warehouse storage", lambda r=root: probe_storage(r, cfg.properties, timeout))
        storage_ok &= c.ok
        checks.append(c)

    def tables_check() -> str:
        if "catalog" not in state:
            raise RuntimeError("skipped: the catalog check failed")
        if not storage_ok:
            raise RuntimeError("skipped: the storage check failed (tables live in that storage)")
        from lakeml.storage.tables import TableStore

        store = TableStore(cfg, catalog=state["catalog"])
        before = {n for n in store.contracts if state["catalog"].table_exists(store.identifier(n))}
        idents = store.ensure_all()
        state["store"] = store
        created = sorted(set(store.contracts) - before)
        made = f"; created {', '.join(created)}" if created else ""
        return f"{len(idents)} lakeml tables in namespace {cfg.namespace!r}{made}"

    checks.append(_run("tables", tables_check))

    def artifact_root_check() -> str:
        if "store" not in state:
            raise RuntimeError("skipped: the tables check failed")
        from lakeml.storage.artifacts import root_warnings

        store = state["store"]
        locations = {store.identifier(n): store.table(n).location() for n in store.contracts}
        problems = root_warnings(cfg.artifact_root, cfg.legacy_artifact_root, locations, cfg.properties)
        if problems:
            raise Warn("; ".join(problems))
        return f"{cfg.artifact_root} lies outside every table's folder"

    checks.append(_run("artifact root", artifact_root_check))

    def duckdb_check() -> str:
        import duckdb

        from lakeml.query.extensions import EXTENSIONS, new_connection

        new_connection().close()
        return f"duckdb {duckdb.__version__} loaded {', '.join(EXTENSIONS)} from site-packages"

    checks.append(_run("duckdb", duckdb_check))

    def read_check() -> str:
        if "store" not in state:
            raise RuntimeError("skipped: the tables check failed")
        from lakeml.query.engine import DuckEngine

        engine = DuckEngine(state["store"])
        try:
            n = engine.arrow("SELECT count(DISTINCT run_id) AS n FROM lakeml.runs", tables=["runs"])["n"][0].as_py()
        finally:
            engine.close()
        return f"DuckDB read lakeml.runs ({n} run(s))"

    checks.append(_run("sql read", read_check))

    def retries_check() -> str:  # the retries of the checks' own commits
        from lakeml.storage.retry import describe_retry_stats

        stats = {what: {k: n - retries_before.get(what, {}).get(k, 0) for k, n in row.items()}
                 for what, row in retry_stats().items()}
        if any(row.get("gave_up") or row.get("slow") for row in stats.values()):
            raise Warn(describe_retry_stats(stats))
        return describe_retry_stats(stats)

    checks.append(_run("commit retries", retries_check))
    return _report(cfg.describe(), checks)


def _report(config: dict[str, str], checks: list[Check]) -> dict[str, Any]:
    return {"config": config, "checks": [asdict(c) for c in checks], "ok": all(c.ok for c in checks)}
