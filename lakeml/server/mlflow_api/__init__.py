"""MLflow's REST API on ``lakeml server``: ``/api/2.0/mlflow/...`` and ``/ajax-api/2.0/mlflow/...``
(tracking, logged models, registry) and the artifact proxy ``/api/2.0/mlflow-artifacts/...``.

Stock MLflow clients work with ``MLFLOW_TRACKING_URI=http://<server>``. The routes are thin: they
read the request (query parameters merged with the JSON body, as MLflow's server does), call
:mod:`lakeml.mlflow_compat` and return its dict. Errors come back in MLflow's shape
(``{"error_code", "message"}``, see :mod:`lakeml.server.errors`). Reads need scope ``read``, writes
``write``.
"""

from __future__ import annotations

from fastapi import APIRouter

from lakeml.server.mlflow_api import artifacts, endpoints

router = APIRouter()
router.include_router(endpoints.router)
router.include_router(artifacts.router)
router.include_router(endpoints.fallback)
