"""Columnar ``predictions`` rows for the common request: float features in, one number out per row.

The prediction logger gathers many requests, then builds their rows here with numpy and Arrow: the
features go to the typed ``feature_values`` list (the float matrix, as is, with NaN and infinities as
nulls) beside ``feature_names`` (one JSON list per request), and the values shared by a request are
repeated with one ``take``: a fraction of a microsecond a row, where JSON features cost ~1.3 us a row
to build and to write to Parquet.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Sequence


#: String columns a request repeats on each of its rows (request_id, model_name, model_uri, service,
#: feature_names): dictionary-encoded, so the buffer, the spool and the Parquet writer hold each value once.
DICTIONARY = (0, 3, 5, 6, 13)


class Scored(NamedTuple):
    """One successful request on the fast path: its queued item, the float64 feature matrix and outputs."""

    item: tuple
    columns: tuple[str, ...]
    features: Any  # numpy float array (rows x columns)
    outputs: Any  # numpy 1-D array of booleans, integers or floats


def fast_scored(item: tuple, inputs: Any, outputs: Any) -> Scored | None:
    """The fast-path form of a queued request, or None when it needs the generic path.

    ``inputs``: what the model scored (a float ndarray, or a DataFrame of float64 columns);
    ``outputs``: its raw output (a 1-D numeric ndarray). The request must have succeeded with named columns."""
    import numpy as np

    feats, preds, status, error = item[1], item[2], item[4], item[5]
    cols = getattr(feats, "columns", None)
    if error is not None or status != 200 or not preds or cols is None:
        return None
    if hasattr(inputs, "dtypes") and hasattr(inputs, "to_numpy"):  # a pandas DataFrame
        if list(inputs.columns) != list(cols) or any(d != np.float64 for d in inputs.dtypes):
            return None
        inputs = inputs.to_numpy()
    if not isinstance(inputs, np.ndarray) or not isinstance(outputs, np.ndarray):
        return None
    n = len(preds)
    if (inputs.ndim != 2 or inputs.dtype.kind != "f" or inputs.shape != (n, len(cols)) or outputs.ndim != 1
            or outputs.shape[0] != n or outputs.dtype.kind not in "biuf"):
        return None
    return Scored(item, tuple(cols), inputs, outputs)


def as_row_item(s: Scored) -> tuple:
    """The generic path's queued item for ``s`` (its rows as dicts and its outputs as a list)."""
    cols = list(s.columns)
    feats = [dict(zip(cols, r)) for r in s.features.tolist()]
    return s.item[:1] + (feats, s.outputs.tolist()) + s.item[3:]


class Gathered(NamedTuple):
    """Requests sharing columns and output kind, as a few arrays (what the log process is sent)."""

    items: list  # the queued items (request id, latency, status, ts, model name/version/uri)
    columns: tuple[str, ...]
    counts: Any  # numpy int64: rows of each request
    features: Any  # numpy float64 (rows x columns), the requests' matrices one after another
    outputs: Any  # numpy 1-D, the requests' outputs one after another


def gather(scored: Sequence[Scored]) -> Gathered:
    """The requests of ``scored`` (same columns and output kind) concatenated."""
    import numpy as np

    counts = np.fromiter((s.features.shape[0] for s in scored), dtype=np.int64, count=len(scored))
    x = np.concatenate([s.features for s in scored]) if len(scored) > 1 else scored[0].features
    out = np.concatenate([s.outputs for s in scored]) if len(scored) > 1 else scored[0].outputs
    return Gathered([s.item for s in scored], scored[0].columns, counts, x, out)


def table_of(scored: Sequence[Scored], schema: Any, service: str) -> Any:
    """The ``predictions`` Arrow table (``schema``: the contract's) of requests sharing columns and output kind."""
    return table_of_gathered(gather(scored), schema, service)


def table_of_gathered(g: Gathered, schema: Any, service: str) -> Any:
    """The ``predictions`` Arrow table of gathered requests (see :func:`table_of`)."""
    import numpy as np
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    counts, items = g.counts, g.items
    total = int(counts.sum())
    which = np.repeat(np.arange(len(items)), counts)
    starts = np.cumsum(counts) - counts
    per_request = {  # request_id, ts, model name/version/uri, latency, status: one value per request
        0: [it[0] for it in items], 2: [it[6] for it in items], 3: [it[7] for it in items],
        4: [it[8] for it in items], 5: [it[9] for it in items],
        10: [float(it[3]) if it[3] is not None else None for it in items], 11: [int(it[4]) for it in items],
    }
    take = pa.array(which.astype(np.int32))
    x = g.features
    ncols = x.shape[1]
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    missing = ~np.isfinite(flat)
    values = pa.array(flat, pa.float64(), mask=missing if missing.any() else None)
    offsets = pa.array(np.arange(0, (total + 1) * ncols, ncols, dtype=np.int32))
    feature_values = pa.ListArray.from_arrays(offsets, values)
    out = g.outputs
    number = out.astype(np.float64)
    bad = ~np.isfinite(number)
    if out.dtype.kind == "b":
        text = pa.array(np.where(out, "true", "false"), pa.string())
    elif out.dtype.kind in "iu":
        text = pa.array(out).cast(pa.string())
    else:
        text = pl.Series(number).cast(pl.Utf8).to_arrow().cast(pa.string())
        if bad.any():
            text = pc.if_else(pa.array(bad), "null", text)
    arrays: list[Any] = []
    fields = list(schema)
    for i, field in enumerate(schema):
        if i in DICTIONARY:  # a request's value for each of its rows: indices into the request values
            values = [service] if i == 6 else [json.dumps(list(g.columns))] if i == 13 else per_request[i]
            idx = take if len(values) > 1 else pa.array(np.zeros(total, np.int32))
            if None in values:  # a null value: null indices (the dictionary itself holds no null)
                idx = pa.array(idx.to_numpy(), mask=np.array([v is None for v in values])[which])
            arrays.append(pa.DictionaryArray.from_arrays(idx, pa.array(values, field.type)))
            fields[i] = field.with_type(arrays[-1].type)
        elif i in per_request:
            arrays.append(pa.array(per_request[i], field.type).take(take))
        elif i == 1:
            arrays.append(pa.array((np.arange(total) - np.repeat(starts, counts)).astype(np.int32), field.type))
        elif i == 7:  # features (JSON): null, the values are typed
            arrays.append(pa.nulls(total, field.type))
        elif i == 8:
            arrays.append(pa.array(number, field.type, mask=bad))
        elif i == 9:
            arrays.append(text)
        elif i == 14:
            arrays.append(feature_values.cast(field.type))
        else:  # error: null on success
            arrays.append(pa.nulls(total, field.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))


def gathered_of(scored: Sequence[Scored]) -> list[Gathered]:
    """One :class:`Gathered` per group of requests with the same columns and output kind (usually one)."""
    groups: dict[tuple, list[Scored]] = {}
    for s in scored:
        groups.setdefault((s.columns, s.outputs.dtype.kind), []).append(s)
    return [gather(g) for g in groups.values()]


def tables_of(scored: Sequence[Scored], schema: Any, service: str) -> list[Any]:
    """One table per group of requests with the same columns and output kind (usually one)."""
    return [table_of_gathered(g, schema, service) for g in gathered_of(scored)]
