"""``LakemlArtifactRepository``: a run's lakeml artifacts under a ``lakeml://`` URI.

The ``lakeml://`` tracking store gives runs their real artifact URI (file:// or s3://), so MLflow's
own repositories write those and this one is not needed for them. It serves URIs that name a run
by id in a lake, for sharing without knowing where the lake keeps its files::

    lakeml:///abs/path/to/warehouse/runs/<run_id>[/<artifact path>]
    lakeml://<catalog>/runs/<run_id>[/<artifact path>]

e.g. ``mlflow.artifacts.download_artifacts("lakeml:///data/wh/runs/<run_id>/model")``. Writes go
through ``lake.log_artifact`` (so they are recorded in the ``artifacts`` table), reads through
the lake's artifact store; paths with ``..`` are refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlflow.store.artifact.artifact_repo import ArtifactRepository

from lakeml.mlflow_plugin.errors import translated
from lakeml.mlflow_plugin.lakes import lake_for

_RUN_URI = re.compile(r"^(?P<lake>lakeml:.*?)/runs/(?P<run_id>[0-9a-f]{32})(?:/(?P<path>[^?#]*))?"
                      r"(?P<query>\?[^#]*)?$")


def parse_run_uri(uri: str) -> tuple[str, str, str]:
    """``(lake URI, run id, artifact path)`` of ``lakeml://.../runs/<run_id>/<path>``."""
    from lakeml.errors import InvalidInputError

    m = _RUN_URI.match(uri or "")
    if not m:
        raise InvalidInputError(f"{uri!r} is not a lakeml artifact URI; use lakeml:///abs/warehouse/runs/<run_id>"
                                "[/<path>] or lakeml://<catalog>/runs/<run_id>[/<path>]")
    # (MLflow may hand back lakeml:/abs/path with one slash: the same URI, as urllib writes it)
    return m["lake"] + (m["query"] or ""), m["run_id"], (m["path"] or "").strip("/")


class LakemlArtifactRepository(ArtifactRepository):
    """The artifacts of one run (below one path) of a lake, addressed as ``lakeml://.../runs/<run_id>/...``."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
        super().__init__(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        lake_uri, self.run_id, self.base = parse_run_uri(artifact_uri)
        self.lake = lake_for(lake_uri)

    def _rel(self, path: str | None) -> str:
        from lakeml.storage.artifacts import clean_artifact_path

        parts = [p for p in (self.base, clean_artifact_path(path or "")) if p]
        return "/".join(parts)

    @translated
    def log_artifact(self, local_file, artifact_path=None):
        self.lake.log_artifact(self.run_id, local_file, self._rel(artifact_path) or None)

    @translated
    def log_artifacts(self, local_dir, artifact_path=None):
        self.lake.log_artifacts(self.run_id, local_dir, self._rel(artifact_path) or None)

    @translated
    def list_artifacts(self, path=None):
        from mlflow.entities import FileInfo

        from pyarrow import fs as pafs

        from lakeml.storage.objectstore import fs_path

        base = self._rel(path)
        if base and self.lake.artifacts.fs.get_file_info(
                fs_path(f"{self.lake.artifact_uri(self.run_id)}/{base}")).type == pafs.FileType.File:
            return []  # a file lists nothing, as MLflow's own repositories answer
        infos = self.lake.list_artifacts(self.run_id, base or None)
        cut = len(self.base) + 1 if self.base else 0
        return [FileInfo(a.path[cut:], a.is_dir, None if a.is_dir else a.size) for a in infos]

    @translated
    def _download_file(self, remote_file_path, local_path):
        import shutil
        import tempfile

        parent = Path(local_path).parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".lakeml-", dir=parent)  # streamed, then renamed into place
        try:
            got = self.lake.download_artifacts(self.run_id, self._rel(remote_file_path), tmp)
            os.replace(got, local_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def delete_artifacts(self, artifact_path=None):
        from lakeml.mlflow_plugin.errors import unsupported

        raise unsupported("delete_artifacts", "run artifacts are kept with the run's history")
