"""MLflow's JSON shapes and semantics over lakeml (layer 3; no ``mlflow`` import).

* ``convert``: lakeml records -> MLflow's REST JSON (the dicts ``google.protobuf.json_format.ParseDict``
  turns into MLflow's protos), and MLflow datasets -> ``inputs`` rows;
* ``tags``: MLflow's system tags (``mlflow.runName``, ``mlflow.parentRunId``...) <-> lakeml run columns;
* ``search``: MLflow filters/order_by -> lakeml ``search_runs`` arguments, page tokens, max_results;
* ``service`` (tracking), ``registry``, ``models`` (MLflow 3 logged models, over ``logged_models``),
  ``artifacts`` (the ``mlflow-artifacts:/`` proxy): MLflow's verbs on a Lake, request dict in,
  response dict out; used by ``lakeml server`` (``lakeml/server/mlflow_api``).
"""
