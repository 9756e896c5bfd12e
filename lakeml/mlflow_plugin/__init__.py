"""MLflow's plugin for ``lakeml://`` URIs: ``mlflow.set_tracking_uri("lakeml:///path/to/warehouse")``
writes runs, models and artifacts into the lake's Iceberg tables, with no server.

* ``lakeml:///abs/path/to/warehouse``: the embedded lake in that folder (SQLite catalog inside);
* ``lakeml://<catalog name>``: a pyiceberg catalog profile (``~/.pyiceberg.yaml``,
  ``PYICEBERG_CATALOG__<NAME>__<KEY>``); ``?namespace=<ns>`` picks the lakeml namespace of either.

The entry points (``mlflow.tracking_store``, ``mlflow.model_registry_store``,
``mlflow.artifact_repository``) are declared in pyproject.toml. This package is the only place
that imports ``mlflow``; it maps MLflow's store API onto ``Lake``'s verbs, with MLflow's JSON
shapes taken from :mod:`lakeml.mlflow_compat`. Nothing here is loaded by ``import lakeml``.
"""

from lakeml.mlflow_plugin.lakes import close, close_all, lake_for

__all__ = ["close", "close_all", "lake_for"]
