"""MLflow's scoring protocol: parse a ``POST /invocations`` body and check it against a signature.

Accepted bodies (as ``mlflow models serve``): JSON with one of ``dataframe_split``
(``{"columns": [...], "data": [[...], ...]}``), ``dataframe_records`` (``[{col: value}, ...]``),
``instances`` (a list of rows: objects or lists or scalars) or ``inputs`` (a list of rows, or an
object of columns), and ``text/csv`` with a header line. The result is a :class:`Batch`: column
names (None for a bare tensor) and rows, which :func:`validate` checks against the model's signature
and :func:`to_model_input` turns into what the model's ``predict`` takes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from lakeml.errors import InvalidInputError

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: Default of ``--max-rows``: rows one request may carry.
MAX_ROWS = 10_000

_NUMERIC = {"double", "float"}
_INTEGER = {"long", "int", "integer"}


_ROW_SEP = re.compile(rb"\]\s*,\s*\[")
_NESTED = re.compile(rb"\[\s*\[")
_NESTED_END = re.compile(rb"\]\s*\]")
_NUMBER_TYPES = (int, float)


@dataclass
class Batch:
    """Rows of one request: ``columns`` (None for a tensor without names) and ``rows`` (lists).

    ``body``: the raw request body when the rows came as one list of number lists, so the prediction
    log can reuse each row's text instead of formatting every float again (see :meth:`features_json`)."""

    columns: list[str] | None
    rows: list[list[Any]]
    body: bytes | None = None
    body_columns: list[str] | None = None  # column order of the rows in ``body``
    lists: bool = False  # the rows came as lists (dataframe_split, or instances/inputs of lists)

    def __len__(self) -> int:
        return len(self.rows)

    def features_json(self) -> list[str]:
        """Each row as a JSON object text (the ``features`` column of the prediction log)."""
        fast = self._raw_rows()
        if fast is not None:
            return fast
        out = []
        for r in self.records():
            try:
                out.append(json.dumps(r, default=str, allow_nan=False))
            except ValueError:  # NaN or infinity: JSON has no such number, so null (as the columnar path writes)
                out.append(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                       for k, v in r.items()}, default=str))
        return out

    def _raw_rows(self) -> list[str] | None:
        """The rows' own text from a body holding exactly one ``[[...], ...]`` list of numbers."""
        body, cols = self.body, self.body_columns or self.columns
        if body is None or cols is None or any("[" in c or "]" in c for c in cols):
            return None
        start = _NESTED.search(body)
        if start is None or _NESTED.search(body, start.end()) is not None:
            return None
        end = _NESTED_END.search(body, start.end())
        if end is None:
            return None
        parts = _ROW_SEP.split(body[start.end():end.start()])
        if len(parts) != len(self.rows):
            return None
        tmpl = "{" + ",".join(json.dumps(c).replace("%", "%%") + ":%s" for c in cols) + "}"
        width = len(cols)
        out = []
        for p in parts:
            vals = p.decode().split(",")
            if len(vals) != width:
                return None
            out.append(tmpl % tuple(v.strip() for v in vals))
        return out

    def records(self) -> list[dict[str, Any]]:
        """Each row as an object (the ``features`` of the prediction log); a tensor's columns are 0, 1, 2..."""
        cols = self.columns
        out = []
        for r in self.rows:
            names = cols if cols is not None else [str(i) for i in range(len(r))]
            out.append(dict(zip(names, r)))
        return out


def _numeric(rows: list[list[Any]]) -> bool:
    return all(type(v) in _NUMBER_TYPES for r in rows for v in r)


def parse(body: bytes, content_type: str | None) -> Batch:
    """The rows of a scoring request body; :class:`InvalidInputError` names what is wrong."""
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        return parse_csv(body)
    if ctype not in ("application/json", "", "*/*"):
        raise InvalidInputError(f"content type {ctype!r} is not supported; send application/json (with one of "
                                f"{', '.join(FORMATS)}) or text/csv")
    try:
        doc = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"the request body is not valid JSON ({e}); send e.g. "
                                '{"dataframe_split": {"columns": [...], "data": [[...]]}}') from None
    batch = parse_json(doc)
    if batch.lists and batch.rows and _numeric(batch.rows):
        batch.body, batch.body_columns = body, batch.columns
    return batch


def parse_json(doc: Any) -> Batch:
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"the JSON body must be an object with one of {', '.join(FORMATS)}; got "
                                f"{type(doc).__name__}")
    keys = [k for k in FORMATS if k in doc]
    if len(keys) != 1:
        what = "none" if not keys else " and ".join(keys)
        raise InvalidInputError(f"the JSON body must have exactly one of {', '.join(FORMATS)} (it has {what}); "
                                "see MLflow's scoring protocol")
    key = keys[0]
    val = doc[key]
    if key == "dataframe_split":
        return _split(val)
    if key == "dataframe_records":
        if not isinstance(val, list):
            raise InvalidInputError("dataframe_records must be a list of row objects, e.g. [{\"x\": 1.0}]")
        return _records(val, key)
    # instances / inputs: rows (objects, lists or scalars), or an object of columns
    if isinstance(val, Mapping):
        return _columns(val, key)
    if not isinstance(val, list):
        raise InvalidInputError(f"{key} must be a list of rows or an object of columns; got {type(val).__name__}")
    if val and all(isinstance(r, Mapping) for r in val):
        return _records(val, key)
    rows = [r if isinstance(r, list) else [r] for r in val]
    return Batch(None, rows, lists=True)


def _split(val: Any) -> Batch:
    if not isinstance(val, Mapping) or "data" not in val:
        raise InvalidInputError('dataframe_split must be an object {"columns": [...], "data": [[...], ...]}')
    data = val["data"]
    if not isinstance(data, list):
        raise InvalidInputError("dataframe_split.data must be a list of rows")
    rows = [r if isinstance(r, list) else [r] for r in data]
    cols = val.get("columns")
    if cols is not None:
        if not isinstance(cols, list):
            raise InvalidInputError("dataframe_split.columns must be a list of column names")
        cols = [str(c) for c in cols]
        for i, r in enumerate(rows):
            if len(r) != len(cols):
                raise InvalidInputError(f"dataframe_split row {i} has {len(r)} values but there are {len(cols)} "
                                        f"columns ({', '.join(cols)})")
    return Batch(cols, rows, lists=True)


def _records(val: list, key: str) -> Batch:
    cols: list[str] = []
    seen: set[str] = set()
    for i, r in enumerate(val):
        if not isinstance(r, Mapping):
            raise InvalidInputError(f"{key}[{i}] must be an object of column -> value; got {type(r).__name__}")
        for c in r:
            if c not in seen:
                seen.add(c)
                cols.append(str(c))
    rows = [[r.get(c) for c in cols] for r in val]
    return Batch(cols, rows)


def _columns(val: Mapping, key: str) -> Batch:
    cols = [str(c) for c in val]
    lists = [v if isinstance(v, list) else [v] for v in val.values()]
    n = {len(v) for v in lists}
    if len(n) > 1:
        raise InvalidInputError(f"the columns of {key} have different lengths ({', '.join(map(str, sorted(n)))}); "
                                "each column must hold one value per row")
    return Batch(cols, [list(r) for r in zip(*lists)])


def parse_csv(body: bytes) -> Batch:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the CSV body is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInputError("the CSV body is empty; send a header line and one line per row") from None
    rows = []
    for i, line in enumerate(reader):
        if not line:
            continue
        if len(line) != len(header):
            raise InvalidInputError(f"CSV line {i + 2} has {len(line)} values but the header has {len(header)}")
        rows.append([_csv_value(x) for x in line])
    return Batch([h.strip() for h in header], rows)


def _csv_value(x: str) -> Any:
    if x == "":
        return None
    try:
        return int(x)
    except ValueError:
        pass
    try:
        return float(x)
    except ValueError:
        return x


def input_columns(signature: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """The named input columns of a signature (None for a tensor signature or none at all)."""
    spec = (signature or {}).get("inputs")
    if isinstance(spec, list) and all(isinstance(c, Mapping) and c.get("name") is not None for c in spec):
        return [dict(c) for c in spec]
    return None


def validate(batch: Batch, signature: Mapping[str, Any] | None, *, max_rows: int = MAX_ROWS) -> Batch:
    """Check the rows against the signature; returns the batch with columns in the signature's order.

    Too many rows, missing or unknown columns, values of the wrong type and nulls in required columns are
    each an :class:`InvalidInputError` naming the column, the row and the rule.
    """
    if len(batch) == 0:
        raise InvalidInputError("the request holds no rows; send at least one")
    if len(batch) > max_rows:
        raise InvalidInputError(f"the request holds {len(batch)} rows, more than the limit of {max_rows} "
                                "(--max-rows); split it into smaller requests")
    spec = (signature or {}).get("inputs")
    cols = input_columns(signature)
    if cols is None:
        if isinstance(spec, Mapping) and spec.get("type") == "tensor":
            width = (spec.get("shape") or [])[1:]
            if len(width) == 1 and width[0] not in (-1, None):
                for i, r in enumerate(batch.rows):
                    if len(r) != width[0]:
                        raise InvalidInputError(f"row {i} has {len(r)} values; the model's signature expects "
                                                f"{width[0]} per row (tensor shape {spec.get('shape')})")
        if batch.body is not None and batch.body_columns is None:
            batch.body_columns = [str(i) for i in range(len(batch.rows[0]))]
        return batch
    names = [c["name"] for c in cols]
    if batch.columns is None:
        for i, r in enumerate(batch.rows):
            if len(r) != len(names):
                raise InvalidInputError(f"row {i} has {len(r)} values but the model expects {len(names)} columns "
                                        f"({', '.join(names)}); send named columns (dataframe_split or "
                                        "dataframe_records) or rows of that width")
        have = names
        rows = batch.rows
    else:
        have = batch.columns
        missing = [n for n in names if n not in have]
        extra = [c for c in have if c not in set(names)]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unknown column(s) {', '.join(map(repr, extra))}")
            raise InvalidInputError(f"the input has {' and '.join(parts)}; the model's signature expects exactly "
                                    f"{', '.join(names)}")
        if have == names:
            rows = batch.rows
        else:
            idx = [have.index(n) for n in names]
            rows = [[r[j] for j in idx] for r in batch.rows]
    for j, c in enumerate(cols):
        _check_column(c, j, rows)
    return Batch(names, rows, batch.body, batch.body_columns or (names if batch.body is not None else None))


def _check_column(col: Mapping[str, Any], j: int, rows: list[list[Any]]) -> None:
    typ = str(col.get("type", "")).lower()
    name = col["name"]
    required = col.get("required", True)
    if typ in _NUMERIC:
        ok = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    elif typ in _INTEGER:
        ok = lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (  # noqa: E731
            isinstance(v, float) and v.is_integer())
    elif typ == "boolean":
        ok = lambda v: isinstance(v, bool)  # noqa: E731
    elif typ == "string":
        ok = lambda v: isinstance(v, str)  # noqa: E731
    else:
        return  # binary, timestamps...: left to the model
    for i, r in enumerate(rows):
        v = r[j]
        if v is None or (isinstance(v, float) and math.isnan(v) and typ not in _NUMERIC):
            if required:
                raise InvalidInputError(f"column {name!r} is null in row {i}; the model's signature requires a "
                                        f"{typ} value")
            continue
        if not ok(v):
            raise InvalidInputError(f"column {name!r} in row {i} is {json.dumps(v, default=str)} "
                                    f"({type(v).__name__}); the model's signature expects {typ}")


def to_model_input(batch: Batch, signature: Mapping[str, Any] | None, kind: str = "frame") -> Any:
    """What ``model.predict`` takes: a pandas DataFrame for named columns (when pandas is installed),
    else a numpy array (of the signature's dtype for a tensor signature). ``kind="array"``: the
    validated numeric columns as one float64 array (see :func:`lakeml.serving.model.fast_input`)."""
    import numpy as np

    if kind == "array":
        return np.array(batch.rows, dtype=np.float64)
    if batch.columns is not None:
        try:
            import pandas as pd
        except ImportError:
            pd = None
        if pd is not None:
            frame = pd.DataFrame(batch.rows, columns=batch.columns)
            cols = input_columns(signature) or []
            for c in cols:  # integers sent for a double column stay doubles
                if str(c.get("type")).lower() in _NUMERIC and frame[c["name"]].dtype.kind in "iu":
                    frame[c["name"]] = frame[c["name"]].astype("float32" if c["type"] == "float" else "float64")
            return frame
    spec = (signature or {}).get("inputs")
    dtype = spec.get("dtype") if isinstance(spec, Mapping) else None
    return np.asarray(batch.rows, dtype=dtype)


def to_rows(output: Any, n: int) -> list[Any]:
    """A model's output as one JSON-ready value per input row (as MLflow answers ``predictions``)."""
    mod = type(output).__module__.split(".")[0]
    if mod == "pandas" and hasattr(output, "to_dict") and hasattr(output, "columns"):
        out = output.to_dict(orient="records")
    elif hasattr(output, "tolist"):
        out = output.tolist()
    elif isinstance(output, (list, tuple)):
        out = [x.tolist() if hasattr(x, "tolist") else x for x in output]
    elif isinstance(output, Mapping):  # columns of outputs
        cols = {k: (v.tolist() if hasattr(v, "tolist") else list(v)) for k, v in output.items()}
        out = [dict(zip(cols, r)) for r in zip(*cols.values())]
    else:
        out = [output] * n if n == 1 else [output]
    if not isinstance(out, list):
        out = [out]
    if len(out) != n:
        raise ValueError(f"the model returned {len(out)} predictions for {n} rows")
    return out
