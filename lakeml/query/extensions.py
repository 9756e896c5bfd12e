"""Load DuckDB's iceberg, httpfs and avro extensions from site-packages, never from the network.

DuckDB checks an extension's signature on every LOAD: hashing the 50 MB iceberg extension costs
~0.2 s of CPU per connection, more than the rest of a cold CLI command's queries. A locked-down
connection (``verified_cache=True``) lets DuckDB check each file the first time and records it
(size, mtime, inode) in ``<cache dir>/duckdb-extensions.json``; later connections load exactly
that unchanged file without checking it again (``allow_unsigned_extensions``, which the lock-down's
``lock_configuration`` and the statement guard keep users' SQL from using: LOAD is refused).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from lakeml.errors import MissingDependencyError

VERIFIED = "duckdb-extensions.json"  # in the cache dir: extension files DuckDB checked the signature of

EXTENSIONS = ("httpfs", "avro", "iceberg")


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file that the PyPI package ``duckdb-extension-<name>`` installed."""
    import duckdb

    pkg = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(pkg)
    hint = f"pip install 'duckdb-extension-{name}=={duckdb.__version__}'"
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"DuckDB extension '{name}' is not installed; lakeml never downloads "
                                     f"extensions at run time. Install it with: {hint}")
    root = Path(list(spec.submodule_search_locations)[0])
    exact = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(root.glob(f"extensions/*/{name}.duckdb_extension"))
    raise MissingDependencyError(
        f"DuckDB extension '{name}' does not match duckdb {duckdb.__version__} "
        f"(found {[p.parent.name for p in found] or 'none'}); install the matching build: {hint}")


def load_extensions(con, names: tuple[str, ...] = EXTENSIONS) -> None:
    """LOAD the extensions ``names`` (default: every one lakeml needs) into ``con`` from their local files."""
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")


def new_connection(database: str = ":memory:", *, httpfs: bool = True, verified_cache: bool = False, **config):
    """A DuckDB connection that will never auto-install or auto-load from the internet.

    ``httpfs=False`` skips the object-store extension (a lake on local disk only: faster to open).
    ``verified_cache``: skip DuckDB's signature check of extension files it checked before
    (only for connections that will be locked down; see the module's docstring).
    """
    import duckdb

    names = EXTENSIONS if httpfs else tuple(n for n in EXTENSIONS if n != "httpfs")
    paths = [extension_path(n) for n in names]
    checked = verified_cache and _checked_before(paths)
    cfg = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
           **({"allow_unsigned_extensions": True} if checked else {})}
    cfg.update(config)
    con = duckdb.connect(database, config=cfg)
    try:
        try:  # else drawn on stdout (even into a pipe) after 2 s
            con.execute("SET enable_progress_bar = false")
        except duckdb.InvalidInputException:  # in Jupyter DuckDB refuses it without ipywidgets: no bar there
            pass
        for path in paths:
            con.execute(f"LOAD '{path}'")
    except BaseException:
        con.close()
        raise
    if verified_cache and not checked:
        _remember(paths)  # DuckDB just checked their signatures
    return con


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _seen() -> dict:
    from lakeml.storage.localdirs import cache_dir

    try:
        data = json.loads((cache_dir() / VERIFIED).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _checked_before(paths: list[Path]) -> bool:
    """Whether DuckDB checked the signature of each of these exact files before (same size, mtime, inode)."""
    seen = _seen()
    try:
        return all(seen.get(str(p)) == _stamp(p) for p in paths)
    except OSError:
        return False


def _remember(paths: list[Path]) -> None:
    from lakeml.storage.localdirs import cache_dir

    seen = _seen()
    try:
        seen.update({str(p): _stamp(p) for p in paths})
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{VERIFIED}.{os.getpid()}"
        tmp.write_text(json.dumps(seen, indent=1))
        os.replace(tmp, folder / VERIFIED)
    except OSError:  # a read-only cache dir: check the signatures every time
        pass
