"""The model registry: models, versions, aliases, deployments and promotion gates as Iceberg tables.

- ``ledger``: ``registry_events`` written by compare-and-swap, folded into state, projected into tables;
- ``state`` / ``changes``: the current state and the pure functions that turn requests into events;
- ``gates``: promotion rules; ``names``: name, alias and URI rules;
- ``flavors`` / ``mlmodel`` / ``signature``: saving and loading models with their metadata;
- ``checkpoints``: the retention policy of training checkpoints.

The component ``lake.registry`` is :class:`lakeml.registry.client.RegistryClient` (models, versions,
aliases, gates, the audit log); its parts are ``model_io`` (log and load models), ``deployments``
(deployments and lineage) and ``checkpointing`` (checkpoints); ``args`` validates their free-form input.
"""

from lakeml.registry.checkpoints import Checkpoint, RetentionPolicy
from lakeml.registry.gates import GateFacts, Gates
from lakeml.registry.mlmodel import ModelInfo
from lakeml.registry.records import (
    Deployment,
    ModelAlias,
    ModelLineage,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    TrainedModel,
)
from lakeml.registry.signature import ModelSignature, infer_signature

__all__ = ["Checkpoint", "Deployment", "GateFacts", "Gates", "ModelAlias", "ModelInfo", "ModelLineage",
           "ModelSignature", "ModelVersion", "RegisteredModel", "RegistryEvent", "RetentionPolicy", "TrainedModel",
           "infer_signature"]
