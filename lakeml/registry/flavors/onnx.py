"""ONNX flavor: an ONNX graph run with onnxruntime (scikit-learn models are converted with skl2onnx)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lakeml.errors import InvalidInputError, MissingDependencyError

MODEL_FILE = "model.onnx"
_ORT_HINT = "pip install 'lakeml[onnx]' (or: pip install onnxruntime)"
_NP_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
             "tensor(int32)": "int32", "tensor(string)": "object", "tensor(bool)": "bool"}


def matches(model: Any) -> bool:
    return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise MissingDependencyError(f"the ONNX flavor needs onnxruntime, which is not installed: {_ORT_HINT}") from e
    return onnxruntime


def _to_bytes(model: Any, input_example: Any) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, (str, Path)) and str(model).endswith(".onnx"):
        return Path(model).read_bytes()
    if matches(model):
        return model.SerializeToString()
    if "sklearn" in sys.modules and any(c.__module__.startswith("sklearn.") for c in type(model).__mro__):
        try:
            import numpy as np
            from skl2onnx import to_onnx
        except ImportError as e:
            raise MissingDependencyError("converting a scikit-learn model to ONNX needs skl2onnx: "
                                         "pip install 'lakeml[onnx]' (or: pip install skl2onnx)") from e
        if input_example is None:
            raise InvalidInputError("converting a scikit-learn model to ONNX needs input_example= (a few rows of "
                                    "the training matrix) to learn the input type")
        sample = np.asarray(input_example)
        sample = sample.astype(np.float32) if sample.dtype.kind == "f" else sample
        try:
            return to_onnx(model, sample[:1]).SerializeToString()
        except Exception as e:
            raise InvalidInputError(f"skl2onnx cannot convert {type(model).__name__}: {e}") from e
    raise InvalidInputError(f"the onnx flavor takes an onnx.ModelProto, .onnx bytes or path, or a scikit-learn "
                            f"model; got {type(model).__name__}")


def save(model: Any, folder: Path, input_example: Any = None) -> tuple[dict[str, Any], list[str]]:
    ort = _ort()
    data = _to_bytes(model, input_example)
    try:  # refuse a graph that onnxruntime cannot run, before it reaches the registry
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise InvalidInputError(f"onnxruntime cannot load this ONNX model: {e}") from e
    (folder / MODEL_FILE).write_bytes(data)
    return ({"model_file": MODEL_FILE, "onnxruntime_version": ort.__version__},
            [f"onnxruntime=={ort.__version__}"])


class OnnxModel:
    """An ONNX model ready to run: ``predict(X)`` for one-input models, ``run(feeds)`` for any."""

    def __init__(self, session: Any):
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def __repr__(self) -> str:
        return f"OnnxModel(inputs={self.input_names}, outputs={self.output_names})"

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> list[Any]:
        return self.session.run(outputs, feeds)

    def predict(self, X: Any) -> Any:
        """The first output (for a converted classifier: the labels) for input ``X``."""
        import numpy as np

        if len(self.input_names) != 1:
            raise InvalidInputError(f"this ONNX model has {len(self.input_names)} inputs ({self.input_names}); "
                                    "call run({name: array, ...}) instead")
        inp = self.session.get_inputs()[0]
        arr = np.asarray(X, dtype=_NP_TYPES.get(inp.type))
        return self.session.run(None, {inp.name: arr})[0]


def load(folder: Path, options: dict[str, Any]) -> OnnxModel:
    ort = _ort()
    sess = ort.InferenceSession(str(folder / options.get("model_file", MODEL_FILE)),
                                providers=["CPUExecutionProvider"])
    return OnnxModel(sess)
