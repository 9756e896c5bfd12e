"""Artifacts: plain objects beside the tables, under ``<root>/<experiment_id>/<run_id>/``.

Paths are validated so that nothing escapes its run. Large files are streamed
(S3 uploads become multipart uploads) and hashed on the way.

The default root, ``<warehouse>/<namespace>-artifacts``, is a prefix no table owns. Before 0.2 it
was ``<warehouse>/<namespace>/artifacts``: the folder of the ``artifacts`` table, where any engine's
orphan-file cleanup would delete them. Such legacy artifacts are still read where they are (a run's
listing merges both places; new files always go to the new root), and :meth:`ArtifactStore.migrate_legacy`
moves them out; a recorded legacy URI keeps resolving after the move (:func:`moved_uri`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lakeml.entities import ArtifactInfo
from lakeml.errors import InvalidInputError, NotFoundError, StorageError
from lakeml.storage.objectstore import filesystem, fs_path
from lakeml.validation import utf8_text

CHUNK = 8 * 1024 * 1024
# <warehouse>/<namespace>/artifacts/<experiment id>/<run id>[/...]: a run folder of the pre-0.2 default root
_LEGACY_RUN = re.compile(r"(?P<base>[A-Za-z][A-Za-z0-9+.-]*://.*)/(?P<ns>[^/]+)/artifacts/"
                         r"(?P<rest>[0-9a-f]{16}/[0-9a-f]{32}(?:/.*)?)")
# <warehouse>/<namespace>-artifacts/<experiment id>/<run id>[/...]: the same under the default root
_DEFAULT_RUN = re.compile(r"(?P<base>[A-Za-z][A-Za-z0-9+.-]*://.*)/(?P<ns>[^/]+)-artifacts/"
                          r"(?P<rest>[0-9a-f]{16}/[0-9a-f]{32}(?:/.*)?)")
_BAD_SEGMENT = re.compile(r"\.{1,2}")  # fullmatch


def clean_artifact_path(path: str | None) -> str:
    """Validate a run-relative artifact path; return it normalised with '/' separators."""
    if path is None or path == "":
        return ""
    if not isinstance(path, str):
        raise InvalidInputError(f"artifact path must be a string, got {type(path).__name__}")
    p = path.replace("\\", "/")
    if p.startswith("/") or re.match(r"^[A-Za-z]:", p) or "://" in p:
        raise InvalidInputError(f"artifact path {path!r} is absolute; pass a path relative to the run, e.g. 'model/'")
    parts = [s for s in p.split("/") if s not in ("",)]
    if any(_BAD_SEGMENT.fullmatch(s) for s in parts):
        raise InvalidInputError(f"artifact path {path!r} contains '.' or '..'; artifact paths cannot leave their run")
    if any("\x00" in s for s in parts):
        raise InvalidInputError(f"artifact path {path!r} contains a NUL byte")
    utf8_text(p, "artifact path")
    if any(len(s.encode("utf-8")) > 255 for s in parts) or len(p.encode("utf-8")) > 1024:
        raise InvalidInputError(f"artifact path {path[:60]!r}... is too long ({len(p.encode('utf-8'))} bytes): each "
                                "part may have 255 bytes and the whole path 1024 (file-system and S3 limits); "
                                "use a shorter name")
    return "/".join(parts)


log = logging.getLogger("lakeml.artifacts")


@dataclass(frozen=True)
class StoredObject:
    path: str  # relative to the run root
    uri: str
    size: int
    sha256: str


class StoredFolder(list):
    """What a folder upload stored (objects, or their paths); ``skipped_links``: the symlinks left out."""

    skipped_links: list[str] = []


class ArtifactStore:
    """Reads and writes run artifacts under one root URI (file:// or s3://)."""

    def __init__(self, root: str, props: dict[str, str], *, legacy_root: str | None = None):
        self.root = root.rstrip("/")
        self.props = props
        # the pre-0.2 default root: read (merged into each run's listing), never written
        self.legacy_root = legacy_root.rstrip("/") if legacy_root and legacy_root.rstrip("/") != self.root else None
        self._fs: Any = None
        self._base = ""

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs, self._base = filesystem(self.root, self.props)
        return self._fs

    def run_uri(self, experiment_id: str, run_id: str) -> str:
        return f"{self.root}/{experiment_id}/{run_id}"

    def _fs_path(self, uri: str) -> str:
        self.fs  # noqa: B018 - resolves _base
        if uri != self.root and not uri.startswith(self.root + "/"):
            return fs_path(uri)  # a legacy or moved location on the same store
        rel = uri[len(self.root):].lstrip("/")
        return f"{self._base.rstrip('/')}/{rel}" if rel else self._base

    def _places(self, uri: str) -> list[str]:
        """``uri`` and where the same object may also be: under the legacy root (a run logged before
        0.2, also when a store was made for one model folder), or where a migration moved it."""
        out = [uri]
        if self.legacy_root and uri.startswith(self.root + "/"):
            out.append(self.legacy_root + uri[len(self.root):])
        for twin in (moved_uri(uri), legacy_uri(uri)):
            if twin is not None and twin not in out:
                out.append(twin)
        return out

    def legacy_runs(self) -> int:
        """How many runs have artifact files under the legacy root (0 without one)."""
        try:
            return len({tuple(rel.split("/")[:2]) for _, rel in self._legacy_files()})
        except OSError as e:
            raise StorageError(f"could not list the legacy artifact root {self.legacy_root}: {e}") from e

    def _legacy_files(self) -> Iterator[tuple[str, str]]:
        """``(path in the filesystem, path below the legacy root)`` of every run artifact there."""
        from pyarrow import fs as pafs

        if not self.legacy_root:
            return
        base = fs_path(self.legacy_root).rstrip("/")
        for info in self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=True)):
            rel = info.path[len(base):].lstrip("/")
            if info.type == pafs.FileType.File and _LEGACY_RUN.fullmatch(f"{self.legacy_root}/{rel}"):
                yield info.path, rel  # not the table's own data/ and metadata/ files, nor folder markers

    def migrate_legacy(self) -> int:
        """Move every artifact from the legacy root (inside the ``artifacts`` table's folder) to the root;
        returns the number of files moved. Idempotent; recorded legacy URIs keep resolving."""
        from pyarrow import fs as pafs

        moved = 0
        try:
            for path, rel in list(self._legacy_files()):
                dest = self._fs_path(f"{self.root}/{rel}")
                if self.fs.type_name == "local":
                    self.fs.create_dir(posixpath.dirname(dest), recursive=True)
                self.fs.move(path, dest)  # a rename on disk; copy + delete on S3
                moved += 1
            if moved and self.fs.type_name == "local":  # the emptied experiment folders
                base = fs_path(self.legacy_root).rstrip("/")
                for info in self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
                    if info.type == pafs.FileType.Directory and re.fullmatch(r"[0-9a-f]{16}", info.base_name):
                        _remove_empty_dirs(Path(info.path))
        except OSError as e:
            raise StorageError(f"could not move legacy artifacts from {self.legacy_root} to {self.root} "
                               f"({moved} moved so far; run it again to finish): {e}") from e
        if moved:
            log.info("lakeml: moved %d artifact files from %s to %s", moved, self.legacy_root, self.root)
        return moved

    def put_file(self, local: str | os.PathLike, run_uri: str, rel_path: str) -> StoredObject:
        """Copy one local file to ``run_uri/rel_path``, hashing it on the way."""
        local = Path(local)
        if not local.is_file():
            raise NotFoundError(f"artifact source {str(local)!r} is not a file; pass an existing file "
                                "(log_artifacts takes a folder)")
        rel = clean_artifact_path(rel_path)
        uri = f"{run_uri}/{rel}"
        dest = self._fs_path(uri)
        digest = hashlib.sha256()
        size = 0
        try:
            parent = posixpath.dirname(dest)
            if parent and self.fs.type_name == "local":  # object stores have no folders to make
                self.fs.create_dir(parent, recursive=True)
            with open(local, "rb") as src, self.fs.open_output_stream(dest) as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except OSError as e:
            raise StorageError(f"could not store artifact {rel!r} at {uri}: {e}") from e
        return StoredObject(rel, uri, size, digest.hexdigest())

    def put_dir(self, local_dir: str | os.PathLike, run_uri: str, rel_prefix: str, *,
                follow_links: bool = False) -> "StoredFolder":
        """Copy every file below ``local_dir``; every path is checked before the first upload.

        A symlink whose target lies outside ``local_dir`` is skipped (it could expose any file
        of the machine), with a logged warning and its path in ``.skipped_links`` of the result,
        unless ``follow_links=True``.
        """
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise NotFoundError(f"artifact folder {str(local_dir)!r} does not exist or is not a folder")
        prefix = clean_artifact_path(rel_prefix)
        base = local_dir.resolve()
        todo, skipped = [], []
        for f in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            rel = f.relative_to(local_dir).as_posix()
            if not follow_links and not f.resolve().is_relative_to(base):
                skipped.append(rel)
                log.warning("lakeml: log_artifacts skipped %r: a symlink to %s, outside %s (pass "
                            "follow_links=True to store it)", rel, os.path.realpath(f), base)
                continue
            todo.append((f, clean_artifact_path(f"{prefix}/{rel}" if prefix else rel)))
        out = StoredFolder(self.put_file(f, run_uri, rel) for f, rel in todo)
        out.skipped_links = skipped
        return out

    def list(self, run_uri: str, path: str = "") -> list[ArtifactInfo]:
        """Direct children of ``path`` (files with sizes, folders with is_dir=True), from every place
        the run's artifacts may be (see :meth:`_places`)."""
        from pyarrow import fs as pafs

        rel = clean_artifact_path(path)
        found: dict[str, ArtifactInfo] = {}
        for place in self._places(run_uri):
            base = self._fs_path(f"{place}/{rel}" if rel else place)
            try:
                infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=False))
            except OSError as e:
                raise StorageError(f"could not list artifacts at {place}: {e}") from e
            run_base = self._fs_path(place).rstrip("/")
            for i in infos:
                relp = i.path[len(run_base):].lstrip("/")
                if i.type == pafs.FileType.Directory:
                    found.setdefault(relp, ArtifactInfo(relp, None, None, True))
                elif i.type == pafs.FileType.File and not relp.endswith("/"):
                    found.setdefault(relp, ArtifactInfo(relp, i.size, None, False))
        return sorted(found.values(), key=lambda a: a.path)

    def walk(self, run_uri: str, path: str = "") -> Iterator[str]:
        """Every file below ``path``, as run-relative paths (each once, wherever it is stored)."""
        seen: set[str] = set()
        for place in self._places(run_uri):
            for f in self._walk_one(place, path):
                if f not in seen:
                    seen.add(f)
                    yield f

    def _walk_one(self, run_uri: str, path: str) -> Iterator[str]:
        from pyarrow import fs as pafs

        rel = clean_artifact_path(path)
        base = self._fs_path(f"{run_uri}/{rel}" if rel else run_uri)
        run_base = self._fs_path(run_uri).rstrip("/")
        info = self.fs.get_file_info(base)
        if info.type == pafs.FileType.File:
            yield rel
            return
        for i in self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=True)):
            if i.type == pafs.FileType.File:
                yield i.path[len(run_base):].lstrip("/")

    def download(self, run_uri: str, path: str, dst: str | os.PathLike) -> Path:
        """Copy ``path`` (a file or a folder) below ``dst``; returns the local path."""
        rel = clean_artifact_path(path)
        dst = Path(dst)
        files = list(self.walk(run_uri, rel))
        if not files:
            raise NotFoundError(f"no artifact {rel or '/'!r} in {run_uri}; list them with list_artifacts()")
        for f in files:
            target = dst / f
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with self._open(f"{run_uri}/{f}") as src, open(target, "wb") as out:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
            except FileNotFoundError as e:
                raise NotFoundError(f"artifact {f!r} of {run_uri} vanished while downloading: {e}") from e
            except OSError as e:
                raise StorageError(f"could not download artifact {f!r} from {run_uri}: {e}") from e
        return dst / rel if rel else dst

    def _open(self, uri: str) -> Any:
        """An input stream for ``uri``, tried at each of its places (FileNotFoundError if none has it)."""
        places = self._places(uri)
        for i, place in enumerate(places):
            try:
                return self.fs.open_input_stream(self._fs_path(place))
            except FileNotFoundError:
                if i == len(places) - 1:
                    raise
        raise FileNotFoundError(uri)  # pragma: no cover - places is never empty

    def read_bytes(self, uri: str) -> bytes:
        try:
            with self._open(uri) as src:
                return src.read()
        except FileNotFoundError as e:
            raise NotFoundError(f"artifact {uri} does not exist") from e
        except OSError as e:
            raise StorageError(f"could not read {uri}: {e}") from e

    def delete(self, uri: str) -> None:
        """Delete the file or folder at ``uri``, at each of its places."""
        from pyarrow import fs as pafs

        for place in self._places(uri):
            p = self._fs_path(place)
            info = self.fs.get_file_info(p)
            if info.type == pafs.FileType.Directory:
                self.fs.delete_dir(p)
            elif info.type == pafs.FileType.File:
                self.fs.delete_file(p)


def inside(uri: str, folder: str) -> bool:
    """True if ``uri`` is ``folder`` or lies below it (``s3a://`` and ``s3n://`` count as ``s3://``)."""
    def norm(u: str) -> str:
        return re.sub(r"^s3[an]://", "s3://", u.rstrip("/"))

    u, f = norm(uri), norm(folder)
    return u == f or u.startswith(f + "/")


def root_warnings(artifact_root: str, legacy_root: str | None, table_locations: dict[str, str],
                  props: dict[str, str]) -> list[str]:
    """What is wrong with where artifacts live (for ``lakeml doctor``): a root inside a table's folder,
    where any engine's orphan-file cleanup of that table would delete them, and legacy artifacts left
    in the pre-0.2 default root."""
    out = [f"artifact root {artifact_root} lies inside the folder of table {name} ({loc}): an orphan-file "
           "cleanup of that table by any engine would delete the artifacts; set 'lakeml.artifact-root' to a "
           "prefix no table owns, e.g. <warehouse>/<namespace>-artifacts"
           for name, loc in sorted(table_locations.items()) if inside(artifact_root, loc)]
    if legacy_root:
        runs = ArtifactStore(artifact_root, props, legacy_root=legacy_root).legacy_runs()
        if runs:
            out.append(f"{runs} run(s) keep artifacts in the pre-0.2 default root {legacy_root}, the `artifacts` "
                       "table's folder, where an orphan-file cleanup by another engine would delete them; they "
                       "still read fine. Move them out with 'lakeml migrate-artifacts'")
    return out


def moved_uri(uri: str) -> str | None:
    """Where :meth:`ArtifactStore.migrate_legacy` puts a legacy artifact URI (None if ``uri`` is not one):
    ``<wh>/<ns>/artifacts/<eid>/<rid>/x`` -> ``<wh>/<ns>-artifacts/<eid>/<rid>/x``."""
    m = _LEGACY_RUN.fullmatch(uri)
    return f"{m['base']}/{m['ns']}-artifacts/{m['rest']}" if m else None


def legacy_uri(uri: str) -> str | None:
    """Where a pre-0.2 lakeml stored an artifact URI of the default root (None if ``uri`` is not one):
    ``<wh>/<ns>-artifacts/<eid>/<rid>/x`` -> ``<wh>/<ns>/artifacts/<eid>/<rid>/x``."""
    m = _DEFAULT_RUN.fullmatch(uri)
    return f"{m['base']}/{m['ns']}/artifacts/{m['rest']}" if m else None


def _remove_empty_dirs(folder: Path) -> None:
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
