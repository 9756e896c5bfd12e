"""Model signatures: the input and output schema a model expects and returns.

A schema is either a list of named columns ``[{"name": "age", "type": "double"}, ...]`` (data
frames, Arrow tables, dicts of arrays) or a tensor ``{"type": "tensor", "dtype": "float64",
"shape": [-1, 4]}`` (numpy arrays; -1 is the batch dimension).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from lakeml.errors import InvalidInputError

_NUMPY_KIND = {"b": "boolean", "i": "long", "u": "long", "f": "double", "U": "string", "S": "binary",
               "O": "string", "M": "timestamp", "m": "duration"}


@dataclass(frozen=True)
class ModelSignature:
    """Input and output schema of a model (each a column list, a tensor spec, or None)."""

    inputs: Any = None
    outputs: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "ModelSignature | None":
        if not d:
            return None
        return cls(d.get("inputs"), d.get("outputs"))


def schema_of(data: Any) -> Any:
    """The schema of a data sample: pandas/polars frames, Arrow tables, numpy arrays, dicts, lists."""
    mod = type(data).__module__.split(".")[0]
    if mod == "pandas" and hasattr(data, "dtypes") and hasattr(data, "columns"):
        return [{"name": str(c), "type": _numpy_type(dt)} for c, dt in data.dtypes.items()]
    if mod == "pandas" and hasattr(data, "dtype"):  # Series
        return [{"name": str(data.name if data.name is not None else 0), "type": _numpy_type(data.dtype)}]
    if mod == "polars" and hasattr(data, "schema"):
        return _arrow_columns(data.to_arrow().schema)
    if mod == "pyarrow" and hasattr(data, "schema"):
        return _arrow_columns(data.schema)
    if mod == "numpy" and hasattr(data, "shape"):
        shape = list(data.shape)
        return {"type": "tensor", "dtype": str(data.dtype), "shape": [-1, *shape[1:]] if shape else []}
    if isinstance(data, Mapping):
        return [{"name": str(k), "type": _value_type(v)} for k, v in data.items()]
    if isinstance(data, (list, tuple)) and data:
        try:
            import numpy as np

            return schema_of(np.asarray(data))
        except Exception:  # noqa: BLE001 - ragged lists have no tensor form
            pass
    raise InvalidInputError(f"cannot infer a schema from {type(data).__name__}; pass a DataFrame, an Arrow "
                            "table, a numpy array or a dict of columns, or give the schema as a list of "
                            "{'name': ..., 'type': ...} columns")


def infer_signature(model_input: Any, model_output: Any = None) -> ModelSignature:
    """A signature from an input sample (and an output sample, e.g. ``model.predict(X[:5])``)."""
    return ModelSignature(schema_of(model_input), schema_of(model_output) if model_output is not None else None)


def coerce(signature: Any) -> dict[str, Any] | None:
    """Accept a ModelSignature, a dict ``{"inputs": ..., "outputs": ...}`` or ``(X, y)`` samples."""
    if signature is None:
        return None
    if isinstance(signature, ModelSignature):
        return signature.to_dict()
    if isinstance(signature, Mapping) and set(signature) <= {"inputs", "outputs"}:
        return {"inputs": _check_schema(signature.get("inputs"), "inputs"),
                "outputs": _check_schema(signature.get("outputs"), "outputs")}
    if isinstance(signature, tuple) and len(signature) == 2:
        return infer_signature(*signature).to_dict()
    raise InvalidInputError(f"signature must be a ModelSignature, a dict with 'inputs' and 'outputs', or an "
                            f"(input sample, output sample) tuple; got {type(signature).__name__}")


def _check_schema(schema: Any, what: str) -> Any:
    if schema is None:
        return None
    if isinstance(schema, Mapping) and schema.get("type") == "tensor":
        return dict(schema)
    if isinstance(schema, list) and all(isinstance(c, Mapping) and "type" in c for c in schema):
        return [dict(c) for c in schema]
    try:
        return schema_of(schema)  # a data sample
    except InvalidInputError:
        raise InvalidInputError(f"signature {what} must be a list of {{'name', 'type'}} columns, a tensor spec "
                                "{'type': 'tensor', 'dtype': ..., 'shape': [...]}, or a data sample") from None


def check_input(signature: Mapping[str, Any] | None, data: Any) -> None:
    """Raise :class:`InvalidInputError` if ``data`` does not fit the signature's inputs (names and width)."""
    spec = (signature or {}).get("inputs")
    if spec is None:
        return
    have = schema_of(data)
    if isinstance(spec, Mapping):
        if not isinstance(have, Mapping):
            raise InvalidInputError("the model expects a tensor (numpy array) input, got named columns")
        want, got = spec.get("shape", [])[1:], have.get("shape", [])[1:]
        if want != got:
            raise InvalidInputError(f"input shape {[-1, *got]} does not match the signature's {[-1, *want]}")
        return
    names = [c.get("name") for c in spec]
    if isinstance(have, Mapping):
        if have.get("shape", [0, 0])[1:] != [len(names)]:
            raise InvalidInputError(f"the model expects {len(names)} columns ({', '.join(map(str, names))}); got an "
                                    f"array of shape {have.get('shape')}")
        return
    missing = [n for n in names if n not in {c["name"] for c in have}]
    if missing:
        raise InvalidInputError(f"input is missing column(s) {', '.join(map(repr, missing))} that the model's "
                                "signature requires")


def _numpy_type(dt: Any) -> str:
    kind = getattr(dt, "kind", None)
    if kind in _NUMPY_KIND:
        if kind == "f" and getattr(dt, "itemsize", 8) == 4:
            return "float"
        if kind == "i" and getattr(dt, "itemsize", 8) <= 4:
            return "int"
        return _NUMPY_KIND[kind]
    return str(dt)


def _arrow_type(t: Any) -> str:
    import pyarrow as pa

    for test, name in ((pa.types.is_boolean, "boolean"), (pa.types.is_int64, "long"), (pa.types.is_integer, "int"),
                       (pa.types.is_float32, "float"), (pa.types.is_floating, "double"),
                       (pa.types.is_string, "string"), (pa.types.is_large_string, "string"),
                       (pa.types.is_timestamp, "timestamp"), (pa.types.is_date, "date"),
                       (pa.types.is_binary, "binary")):
        if test(t):
            return name
    return str(t)


def _arrow_columns(schema: Any) -> list[dict[str, str]]:
    return [{"name": f.name, "type": _arrow_type(f.type)} for f in schema]


def _value_type(v: Any) -> str:
    if hasattr(v, "dtype"):
        return _numpy_type(v.dtype)
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "long"
    if isinstance(v, float):
        return "double"
    if isinstance(v, (list, tuple)) and v:
        return _value_type(v[0])
    return "string"
