"""``lakeml server``: the lake as a shared HTTP service (FastAPI on uvicorn).

Layer 1 (beside the CLI). ``create_app(lake, settings)`` in :mod:`lakeml.server.app` builds the
ASGI app; each area is a router module listed in ``app.ROUTERS``: lakeml's own ``/api/v1/``,
MLflow's REST API under ``/api/2.0/mlflow/``, the SQL endpoint, health and metrics, the portal.
"""
