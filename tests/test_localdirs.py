"""One resolver each for lakeml's local folders: the cache dir (stored metric summaries, the spool of
a remote lake) and the spool root."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from lakeml.query import summary_store
from lakeml.storage import spool
from lakeml.storage.config import resolve
from lakeml.storage.localdirs import cache_dir, lake_hash, spool_root


def test_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEML_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LAKEML_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lakeml"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "lakeml"


def test_spool_and_summaries_share_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEML_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.delenv("LAKEML_SPOOL_DIR", raising=False)
    remote = resolve(uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse="s3://bucket/wh")
    assert spool_root(remote) == tmp_path / "c" / "spool" / lake_hash(remote)
    assert spool.spool_root is spool_root  # the spool module re-exports the one resolver
    tbl = SimpleNamespace(metadata=SimpleNamespace(table_uuid="u"), location=lambda: "s3://bucket/wh/m")
    assert summary_store.summary_path(tbl).parent == tmp_path / "c"


def test_spool_root_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("LAKEML_SPOOL_DIR", raising=False)
    local = resolve(warehouse=tmp_path / "wh")
    assert spool_root(local) == Path(local.warehouse_dir) / ".lakeml-spool" / local.namespace
    monkeypatch.setenv("LAKEML_SPOOL_DIR", str(tmp_path / "sp"))
    assert spool_root(local) == (tmp_path / "sp").resolve() / lake_hash(local)
    monkeypatch.setenv("LAKEML_SPOOL_DIR", "off")
    assert spool_root(local) is None
    explicit = resolve(warehouse=tmp_path / "wh", **{"lakeml.spool-dir": str(tmp_path / "mine")})
    assert spool_root(explicit) == (tmp_path / "mine").resolve() / lake_hash(explicit)  # the property wins
