"""How MLflow's system tags map onto lakeml's run columns.

A lakeml run keeps its name, parent and user in columns of the ``runs`` table. MLflow keeps
them as tags too (``mlflow.runName``, ``mlflow.parentRunId``, ``mlflow.user``...). Writes through
MLflow move the tags that have a column into that column (so the tables hold the same rows as a
native run); reads add them back as tags (so MLflow's clients see what they expect).
"""

from __future__ import annotations

from typing import Any, Mapping

RUN_NAME = "mlflow.runName"
PARENT_RUN_ID = "mlflow.parentRunId"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
LOGGED_MODELS = "mlflow.log-model.history"
DATASET_CONTEXT = "mlflow.data.context"

#: lakeml's own tag for a nested run's parent (written by ``TrackingClient.create_run``)
LAKEML_PARENT = "lakeml.parentRunId"

#: MLflow tags held in a lakeml run column: not stored as tags, added back on read
COLUMN_TAGS = frozenset({RUN_NAME, PARENT_RUN_ID})


def split_create_tags(tags: Mapping[str, Any], run_name: str | None = None) -> tuple[str | None, str | None, dict]:
    """MLflow create-run tags -> (run_name, parent_run_id, tags to store as lakeml tags)."""
    rest = {str(k): v for k, v in tags.items()}
    name = run_name or rest.get(RUN_NAME) or None
    rest.pop(RUN_NAME, None)
    parent = rest.pop(PARENT_RUN_ID, None) or None
    return name, parent, rest


def system_tags(*, run_name: str | None, parent_run_id: str | None, user: str | None,
                source: str | None, git_commit: str | None, tags: Mapping[str, str]) -> dict[str, str]:
    """The run's tags as MLflow shows them: lakeml's tags plus the system tags derived from its columns
    (a tag the run logged itself wins)."""
    out: dict[str, str] = {}
    derived = {RUN_NAME: run_name, PARENT_RUN_ID: parent_run_id, USER: user, SOURCE_NAME: source,
               GIT_COMMIT: git_commit}
    for k, v in derived.items():
        if v:
            out[k] = str(v)
    out.update({k: v for k, v in tags.items() if v is not None})
    if parent_run_id:
        out[PARENT_RUN_ID] = parent_run_id
    if run_name:
        out[RUN_NAME] = run_name
    return out
