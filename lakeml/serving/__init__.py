"""Model serving: MLflow's scoring protocol over a registered model, inference logging to Iceberg.

``protocol`` parses scoring requests and checks them against the model's signature,
``predlog.PredictionLogger`` writes one ``predictions`` row per scored row off the request path,
``model.ServedModel`` holds the loaded model (swapped atomically when an alias moves), ``app``
builds the FastAPI app of ``lakeml models serve`` and ``package`` writes a self-contained service
folder. A component (layer 3): it uses the lake only through its public members and never imports
``lakeml.client``. Nothing here is imported by ``import lakeml``.
"""
