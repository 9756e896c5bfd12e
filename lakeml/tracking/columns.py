"""The columnar fast path of ``log_batch``: whole metric series as Arrow columns.

``Lake.log_batch(run_id, metrics=...)`` takes, besides a list of ``Metric``, a
table (pyarrow, polars, pandas: anything ``pyarrow.table()`` accepts) or a dict
of columns: ``key`` (a column, or one string for every row), ``value``, and
optionally ``step`` (default 0) and ``timestamp`` (ms since the epoch, default
now). It is validated column by column and buffered as one Arrow table, with no
per-point Python work; a column that breaks a rule is reported by the same
:mod:`lakeml.validation` function (and message) as a single ``log_metric`` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from lakeml import validation as v
from lakeml.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

COLUMNS = ("key", "value", "step", "timestamp")


def is_columnar(metrics: Any) -> bool:
    """True for a dict of columns or a table-like object, False for an iterable of ``Metric``."""
    return isinstance(metrics, Mapping) or hasattr(metrics, "__arrow_c_stream__") or \
        type(metrics).__name__ in ("Table", "RecordBatch", "DataFrame")


def metric_table(run_id: str, metrics: Any, now_us: int, schema: "pa.Schema") -> "pa.Table":
    """Validate columnar metrics and return them as an Arrow table in the ``metrics`` contract schema."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = _columns(metrics)
    unknown = sorted(set(cols) - set(COLUMNS))
    if unknown or "value" not in cols or "key" not in cols:
        raise InvalidInputError(f"columnar metrics need the columns 'key' and 'value' (optional: 'step', "
                                f"'timestamp' in ms); got {sorted(cols)}")
    value = cols["value"]
    n = len(value)
    for name, col in cols.items():
        if not isinstance(col, str) and len(col) != n:
            raise InvalidInputError(f"columnar metrics: column {name!r} has {len(col)} rows but 'value' has {n}")

    key = cols["key"]
    if isinstance(key, str):
        v.validate_key(key, "metric")
        key = pa.repeat(pa.scalar(key, pa.large_string()), n)
    else:
        kt = key.type.value_type if pa.types.is_dictionary(key.type) else key.type
        if not (pa.types.is_string(kt) or pa.types.is_large_string(kt) or pa.types.is_string_view(kt)):
            raise InvalidInputError(f"columnar metrics: 'key' must hold strings, got {key.type}")
        _no_nulls(key, "key")
        key = key.cast(pa.large_string())
        for k in pc.unique(key).to_pylist():
            v.validate_key(k, "metric")

    key_name = cols["key"] if isinstance(cols["key"], str) else "value"
    if not (pa.types.is_floating(value.type) or pa.types.is_integer(value.type) or pa.types.is_decimal(value.type)):
        _first_refused(value, lambda x: v.metric_value(x, key_name))
        raise InvalidInputError(f"columnar metrics: 'value' must be numbers, got {value.type} (use log_param or "
                                "set_tag for text)")
    _no_nulls(value, "value")
    value = value.cast(pa.float64(), safe=False)

    step = cols.get("step")
    if step is None:
        step = pa.repeat(pa.scalar(0, pa.int64()), n)
    else:
        _no_nulls(step, "step")
        if pa.types.is_floating(step.type):
            if n and not pc.all(pc.equal(pc.floor(step), step)).as_py():
                _first_refused(pc.filter(step, pc.not_equal(pc.floor(step), step)), lambda x: v.step_value(x, key_name))
                raise InvalidInputError("columnar metrics: 'step' holds fractional numbers; steps are integers")
        elif not pa.types.is_integer(step.type):
            _first_refused(step, lambda x: v.step_value(x, key_name))
            raise InvalidInputError(f"columnar metrics: 'step' must be integers, got {step.type}")
        step = _cast(step, pa.int64(), "step")

    ts = cols.get("timestamp")
    if ts is None:
        ts = pa.repeat(pa.scalar(now_us, pa.timestamp("us", tz="UTC")), n)
    elif pa.types.is_timestamp(ts.type):
        _no_nulls(ts, "timestamp")
        ts = ts.cast(pa.timestamp("us", tz=ts.type.tz or "UTC"))
    else:
        if not pa.types.is_integer(ts.type):
            raise InvalidInputError(f"columnar metrics: 'timestamp' must be milliseconds since the epoch "
                                    f"(integers), got {ts.type}")
        _no_nulls(ts, "timestamp")
        if n:
            lo, hi = pc.min_max(ts).values()
            v.timestamp_ms(lo.as_py(), "timestamp")
            v.timestamp_ms(hi.as_py(), "timestamp")
        ts = pc.multiply(_cast(ts, pa.int64(), "timestamp"), 1000).cast(pa.timestamp("us", tz="UTC"))

    run = pa.repeat(pa.scalar(run_id, pa.large_string()), n)
    arrays = {"run_id": run, "key": key, "value": value, "step": step, "timestamp": ts}
    return pa.Table.from_arrays([_chunked(arrays[f.name]).cast(f.type) for f in schema], schema=schema)


def _first_refused(col: Any, check: Any) -> None:
    """Run the per-point rule of lakeml.validation on the column's first value, so a bad column gets the
    same error as one bad ``log_metric`` call (the caller raises its own if that value passes)."""
    if len(col):
        check(col[0].as_py())


def _columns(metrics: Any) -> dict[str, Any]:
    import pyarrow as pa

    try:
        if isinstance(metrics, Mapping):
            return {str(k): c if isinstance(c, str) else _as_arrow(c) for k, c in metrics.items()}
        tbl = metrics if isinstance(metrics, pa.Table) else pa.table(metrics)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
        raise InvalidInputError(f"columnar metrics could not be read as columns: {e}") from None
    return {name: tbl.column(name) for name in tbl.column_names}


def _as_arrow(col: Any) -> Any:
    import pyarrow as pa

    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        return col
    if hasattr(col, "to_arrow"):  # polars Series
        return col.to_arrow()
    if isinstance(col, (range, tuple)) or type(col).__name__ == "generator":
        col = list(col)
    return pa.array(col)


def _chunked(a: Any) -> Any:
    import pyarrow as pa

    return a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a], a.type)


def _no_nulls(col: Any, name: str) -> None:
    if col.null_count:
        raise InvalidInputError(f"columnar metrics: column {name!r} has {col.null_count} null value(s); every "
                                "point needs a value (log NaN for a missing number)")


def _cast(col: Any, to: Any, name: str) -> Any:
    import pyarrow as pa

    try:
        return col.cast(to)
    except (pa.ArrowInvalid, OverflowError) as e:
        raise InvalidInputError(f"columnar metrics: column {name!r} does not fit in a 64-bit integer: {e}") from None
