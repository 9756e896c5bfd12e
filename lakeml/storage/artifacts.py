"""Artifacts: plain objects beside the tables, under ``<root>/<experiment_id>/<run_id>/``.

Paths are validated so that nothing escapes its run. Large files are streamed
(S3 uploads become multipart uploads) and hashed on the way.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lakeml.entities import ArtifactInfo
from lakeml.errors import InvalidInputError, NotFoundError, StorageError
from lakeml.storage.objectstore import filesystem

CHUNK = 8 * 1024 * 1024
_BAD_SEGMENT = re.compile(r"^\.{1,2}$")


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
    if any(_BAD_SEGMENT.match(s) for s in parts):
        raise InvalidInputError(f"artifact path {path!r} contains '.' or '..'; artifact paths cannot leave their run")
    if any("\x00" in s for s in parts):
        raise InvalidInputError(f"artifact path {path!r} contains a NUL byte")
    if any(len(s.encode("utf-8")) > 255 for s in parts) or len(p.encode("utf-8")) > 1024:
        raise InvalidInputError(f"artifact path {path[:60]!r}... is too long ({len(p.encode('utf-8'))} bytes): each "
                                "part may have 255 bytes and the whole path 1024 (file-system and S3 limits); "
                                "use a shorter name")
    return "/".join(parts)


@dataclass(frozen=True)
class StoredObject:
    path: str  # relative to the run root
    uri: str
    size: int
    sha256: str


class ArtifactStore:
    """Reads and writes run artifacts under one root URI (file:// or s3://)."""

    def __init__(self, root: str, props: dict[str, str]):
        self.root = root.rstrip("/")
        self.props = props
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
        rel = uri[len(self.root):].lstrip("/")
        return f"{self._base.rstrip('/')}/{rel}" if rel else self._base

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

    def put_dir(self, local_dir: str | os.PathLike, run_uri: str, rel_prefix: str) -> list[StoredObject]:
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise NotFoundError(f"artifact folder {str(local_dir)!r} does not exist or is not a folder")
        prefix = clean_artifact_path(rel_prefix)
        out = []
        for f in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            rel = f.relative_to(local_dir).as_posix()
            out.append(self.put_file(f, run_uri, f"{prefix}/{rel}" if prefix else rel))
        return out

    def list(self, run_uri: str, path: str = "") -> list[ArtifactInfo]:
        """Direct children of ``path`` (files with sizes, folders with is_dir=True)."""
        from pyarrow import fs as pafs

        rel = clean_artifact_path(path)
        base = self._fs_path(f"{run_uri}/{rel}" if rel else run_uri)
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=False))
        except OSError as e:
            raise StorageError(f"could not list artifacts at {run_uri}: {e}") from e
        run_base = self._fs_path(run_uri).rstrip("/")
        out = []
        for i in infos:
            relp = i.path[len(run_base):].lstrip("/")
            if i.type == pafs.FileType.Directory:
                out.append(ArtifactInfo(relp, None, None, True))
            elif i.type == pafs.FileType.File and not relp.endswith("/"):
                out.append(ArtifactInfo(relp, i.size, None, False))
        return sorted(out, key=lambda a: a.path)

    def walk(self, run_uri: str, path: str = "") -> Iterator[str]:
        """Every file below ``path``, as run-relative paths."""
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
                with self.fs.open_input_stream(self._fs_path(f"{run_uri}/{f}")) as src, open(target, "wb") as out:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
            except OSError as e:
                raise StorageError(f"could not download artifact {f!r} from {run_uri}: {e}") from e
        return dst / rel if rel else dst

    def read_bytes(self, uri: str) -> bytes:
        try:
            with self.fs.open_input_stream(self._fs_path(uri)) as src:
                return src.read()
        except FileNotFoundError as e:
            raise NotFoundError(f"artifact {uri} does not exist") from e
        except OSError as e:
            raise StorageError(f"could not read {uri}: {e}") from e

    def delete(self, uri: str) -> None:
        from pyarrow import fs as pafs

        p = self._fs_path(uri)
        info = self.fs.get_file_info(p)
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(p)
        elif info.type == pafs.FileType.File:
            self.fs.delete_file(p)
