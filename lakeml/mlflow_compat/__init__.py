"""MLflow's JSON shapes and semantics over lakeml (layer 3; no ``mlflow`` import).

``convert`` turns lakeml records into MLflow's REST JSON (the dicts ``google.protobuf.json_format``
parses into MLflow's protos); ``search`` translates MLflow search arguments and page tokens;
``tags`` maps MLflow's system tags onto lakeml's run columns; ``service`` runs MLflow's verbs on a Lake.
"""
