"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/<path>``) over lakeml's artifact store.

MLflow clients see ``mlflow-artifacts:/<experiment id>/<run id>/artifacts/<path>``; that is the run's
lakeml artifact ``<path>`` (``lake.tracking.artifact_uri(run_id)/<path>``), so a model uploaded by
``mlflow.sklearn.log_model`` is the same folder ``lake.load_model("runs:/<run id>/model")`` reads, and
an upload into a run is recorded in the ``artifacts`` table as ``lake.log_artifact`` records it. Any
other proxy path (e.g. ``<experiment id>/models/<model id>/artifacts/...``, a logged model without a
run) is ``<artifact root>/<path>``.

Uploads are streamed into a temporary file first and stored only once the whole body arrived, so a
client that disconnects mid-upload leaves nothing visible.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lakeml.errors import InvalidInputError, NotFoundError, StorageError
from lakeml.mlflow_compat.convert import PROXY_SCHEME

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Place:
    """Where a proxy path is: ``base`` (a run's artifact URI or the artifact root) and ``rel`` below it."""

    base: str
    rel: str
    run_id: str | None = None

    @property
    def uri(self) -> str:
        return f"{self.base}/{self.rel}" if self.rel else self.base


def clean_proxy_path(path: str | None) -> str:
    """A proxy path, normalised; InvalidInputError for ``..``, ``.``, absolute paths and NUL bytes."""
    from lakeml.storage.artifacts import clean_artifact_path

    if path is None:
        return ""
    if not isinstance(path, str):
        raise InvalidInputError(f"artifact path must be a string, got {path!r}")
    return clean_artifact_path(path.strip("/") if not path.startswith("//") else path)


class ArtifactProxy:
    """Resolve, list, read and write proxy paths of one Lake."""

    def __init__(self, lake: Any):
        self.lake = lake

    @property
    def root(self) -> str:
        return self.lake.artifacts.root

    def place(self, path: str | None) -> Place:
        p = clean_proxy_path(path)
        parts = p.split("/") if p else []
        if len(parts) >= 3 and parts[2] == "artifacts" and _RUN_ID.match(parts[1]):
            run_id = parts[1]
            base = self.lake.tracking.artifact_uri(run_id)  # NotFoundError for an unknown run
            return Place(base, "/".join(parts[3:]), run_id)
        return Place(self.root, p)

    def to_proxy_uri(self, uri: str) -> str:
        """A native artifact URI below the lake's artifact root -> the ``mlflow-artifacts:/`` URI of the same files."""
        root = self.root.rstrip("/")
        if uri != root and not uri.startswith(root + "/"):
            return uri
        rel = uri[len(root):].strip("/")
        parts = rel.split("/")
        if len(parts) >= 2 and _RUN_ID.match(parts[1]):
            tail = "/".join(parts[2:])
            return f"{PROXY_SCHEME}/{parts[0]}/{parts[1]}/artifacts" + (f"/{tail}" if tail else "")
        return f"{PROXY_SCHEME}/{rel}"

    def _fs_path(self, uri: str) -> str:
        from lakeml.storage.objectstore import fs_path

        return fs_path(uri)

    def list(self, path: str | None) -> list[dict[str, Any]]:
        """MLflow's FileInfo JSON of the direct children of ``path`` (paths relative to ``path``)."""
        from pyarrow import fs as pafs

        pl = self.place(path)
        if pl.rel:
            try:
                kind = self.lake.artifacts.fs.get_file_info(self._fs_path(pl.uri)).type
            except OSError as e:
                raise StorageError(f"could not list artifacts at {path!r}: {e}") from e
            if kind == pafs.FileType.File:
                return []  # a file has no children (MLflow's stores answer the same)
        base = Path(pl.rel) if pl.rel else None
        out = []
        for a in self.lake.artifacts.list(pl.base, pl.rel):
            rel = a.path
            if base is not None:
                rel = rel[len(pl.rel):].lstrip("/")
            info: dict[str, Any] = {"path": rel, "is_dir": bool(a.is_dir)}
            if not a.is_dir and a.size is not None:
                info["file_size"] = int(a.size)
            out.append(info)
        return out

    def open(self, path: str) -> tuple[Any, int | None]:
        """An input stream of the file at ``path`` and its size; NotFoundError if it is no file."""
        from pyarrow import fs as pafs

        pl = self.place(path)
        if not pl.rel:
            raise InvalidInputError(f"artifact path {path!r} names a folder; download files one by one")
        fs = self.lake.artifacts.fs
        p = self._fs_path(pl.uri)
        try:
            info = fs.get_file_info(p)
            if info.type != pafs.FileType.File:
                raise NotFoundError(f"no artifact file {path!r} on this server; list the folder with "
                                    "GET /api/2.0/mlflow-artifacts/artifacts?path=<folder>")
            return fs.open_input_stream(p), info.size
        except OSError as e:
            raise StorageError(f"could not read artifact {path!r}: {e}") from e

    def iter_file(self, stream: Any) -> Iterator[bytes]:
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        finally:
            stream.close()

    def staging(self) -> Path:
        """A fresh local folder for one upload (removed by :meth:`store` or :meth:`discard`)."""
        return Path(tempfile.mkdtemp(prefix="lakeml-upload-"))

    def store(self, path: str, staged_file: Path) -> str:
        """Store a completely received upload at ``path``; returns the artifact URI written.

        An upload into a run goes through ``lake.tracking.log_artifact`` (so the ``artifacts`` table
        records it, as for a native upload); on a local file system the file is written beside its
        target and renamed into place, so readers never see a partial file."""
        pl = self.place(path)
        if not pl.rel:
            raise InvalidInputError(f"artifact path {path!r} names no file; PUT to .../artifacts/<folder>/<file>")
        name = pl.rel.rsplit("/", 1)[-1]
        folder = pl.rel.rsplit("/", 1)[0] if "/" in pl.rel else ""
        src = staged_file.parent / name
        if src != staged_file:
            os.replace(staged_file, src)
        try:
            if pl.run_id is not None:
                self.lake.tracking.log_artifact(pl.run_id, src, artifact_path=folder or None)
            else:
                self.lake.artifacts.put_file(src, pl.base, pl.rel)
        finally:
            self.discard(src.parent)
        return pl.uri

    def discard(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def delete(self, path: str) -> None:
        pl = self.place(path)
        if not pl.rel:
            raise InvalidInputError("refusing to delete a whole run's or the root's artifacts; name a file or folder")
        self.lake.artifacts.delete(pl.uri)
