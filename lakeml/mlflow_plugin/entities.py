"""MLflow entities from the JSON of :mod:`lakeml.mlflow_compat.convert` (one mapping, two doors:
the REST server answers the JSON, this plugin parses it into MLflow's protos and entities)."""

from __future__ import annotations

from typing import Any

from mlflow.entities import Metric

from lakeml.mlflow_compat.convert import float_from_json


def _parse(d: dict[str, Any], proto_cls: type, entity_cls: Any) -> Any:
    from google.protobuf.json_format import ParseDict

    return entity_cls.from_proto(ParseDict(d, proto_cls(), ignore_unknown_fields=True))


def experiment(d: dict[str, Any]) -> Any:
    from mlflow.entities import Experiment
    from mlflow.protos.service_pb2 import Experiment as Proto

    return _parse(d, Proto, Experiment)


def run(d: dict[str, Any]) -> Any:
    from mlflow.entities import Run
    from mlflow.protos.service_pb2 import Run as Proto

    return _parse(d, Proto, Run)


def run_info(d: dict[str, Any]) -> Any:
    from mlflow.entities import RunInfo
    from mlflow.protos.service_pb2 import RunInfo as Proto

    return _parse(d, Proto, RunInfo)


def metric(d: dict[str, Any]) -> Any:
    """A Metric from its JSON, built directly: histories have many points, and a protobuf round trip
    per point costs ~100x more."""
    return Metric(d["key"], float_from_json(d["value"]), int(d.get("timestamp") or 0), int(d.get("step") or 0),
                  run_id=d.get("run_id"))


def logged_model(d: dict[str, Any]) -> Any:
    from mlflow.entities import LoggedModel
    from mlflow.protos.service_pb2 import LoggedModel as Proto

    return _parse(d, Proto, LoggedModel)


def registered_model(d: dict[str, Any]) -> Any:
    from mlflow.entities.model_registry import RegisteredModel
    from mlflow.protos.model_registry_pb2 import RegisteredModel as Proto

    return _parse(d, Proto, RegisteredModel)


def model_version(d: dict[str, Any]) -> Any:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.protos.model_registry_pb2 import ModelVersion as Proto

    return _parse(d, Proto, ModelVersion)


def as_dict(entity: Any) -> dict[str, Any]:
    """An MLflow entity as its proto JSON (the shape :mod:`lakeml.mlflow_compat.convert` reads)."""
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(entity.to_proto(), preserving_proto_field_name=True)
