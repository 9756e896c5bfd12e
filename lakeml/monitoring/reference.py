"""The reference of drift checks: the exact Iceberg snapshot a model version was trained on (its lineage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeml.query.cache import ident, q

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lakeml.registry.deployments import Deployments
    from lakeml.tracking.inputs import RunInputs

PREDICTION = "__prediction__"  # the pseudo-feature of prediction drift (reference: the training target)
MAX_REFERENCE_ROWS = 2_000_000  # training rows read for the reference (the first ones of the snapshot)
TARGET_KEYS = ("target", "target_column", "label", "label_column")  # run params naming the target column


@dataclass
class Reference:
    """Training data of one model version, or why there is none."""

    table: "pa.Table | None" = None
    name: str | None = None  # namespace.table@snapshot_id
    target: str | None = None
    note: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def load_reference(deployments: "Deployments", inputs: "RunInputs", name: str, version: int) -> Reference:
    """The training input recorded in the version's lineage (role ``train`` first), read at its snapshot."""
    from lakeml.errors import LakemlError

    try:
        lineage = deployments.model_lineage(name, version)
    except LakemlError as e:
        return Reference(note=f"no lineage for {name} version {version}: {e}")
    iceberg = [i for i in lineage.inputs if i.kind == "iceberg" and i.table and i.snapshot_id is not None]
    iceberg.sort(key=lambda i: i.role != "train")
    if not iceberg:
        return Reference(note=f"{name} version {version} has no Iceberg input in its lineage (log_input with a "
                              "table in its training run); drift checks are skipped", params=dict(lineage.params))
    di = iceberg[0]
    try:
        tbl = inputs.load_table(di.table)
        if tbl.snapshot_by_id(di.snapshot_id) is None:
            return Reference(note=f"snapshot {di.snapshot_id} of {di.table} has been expired; drift checks are "
                                  "skipped", params=dict(lineage.params))
        data = tbl.scan(snapshot_id=di.snapshot_id, limit=MAX_REFERENCE_ROWS).to_arrow()
    except LakemlError as e:
        return Reference(note=f"cannot read {di.table}@{di.snapshot_id}: {e}", params=dict(lineage.params))
    return Reference(data, f"{di.table}@{di.snapshot_id}", params=dict(lineage.params))


def split_columns(ref: Reference, seen: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features: training columns that requests carry; sets ``ref.target``
    to the training column that requests do not carry, when there is exactly one (or a run param names it)."""
    import pyarrow as pa

    if ref.table is None:
        return [], []
    cols = ref.table.column_names
    features = [c for c in cols if c in set(seen)]
    named = next((ref.params[k] for k in TARGET_KEYS if ref.params.get(k) in cols), None)
    rest = [c for c in cols if c not in features]
    ref.target = named or (rest[0] if len(rest) == 1 else None)
    numeric, categorical = [], []
    for c in features:
        t = ref.table.schema.field(c).type
        (numeric if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
         else categorical).append(c)
    return numeric, categorical


def reference_sql(numeric: list[str], categorical: list[str], target: str | None, classifier: bool) -> tuple[str, str]:
    """SELECTs over ``training`` giving ``reference_num(feature, x)`` and ``reference_cat(feature, c)``
    (the target column as the feature ``__prediction__``). Names are bound as values, quoted as columns."""
    num = [f"SELECT {q(c)} AS feature, CAST({ident(c)} AS DOUBLE) AS x FROM training" for c in numeric]
    cat = [f"SELECT {q(c)} AS feature, CAST({ident(c)} AS VARCHAR) AS c FROM training" for c in categorical]
    if target is not None:
        if classifier:  # classes as the text of their number, as current_cat writes predictions
            cat.append(f"SELECT {q(PREDICTION)} AS feature, CAST(TRY_CAST({ident(target)} AS DOUBLE) AS VARCHAR) AS c "
                       "FROM training")
        else:
            num.append(f"SELECT {q(PREDICTION)} AS feature, TRY_CAST({ident(target)} AS DOUBLE) AS x FROM training")
    empty_num = "SELECT NULL::VARCHAR AS feature, NULL::DOUBLE AS x WHERE false"
    empty_cat = "SELECT NULL::VARCHAR AS feature, NULL::VARCHAR AS c WHERE false"
    return " UNION ALL ".join(num) or empty_num, " UNION ALL ".join(cat) or empty_cat


def is_classifier(con: Any, ref: Reference) -> bool:
    """A classifier when the target (else the predictions) holds at most 20 distinct whole numbers, or
    is not numeric at all (strings, booleans)."""
    import pyarrow as pa

    if ref.table is not None and ref.target is not None:
        t = ref.table.schema.field(ref.target).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
            return True
        sql = f"SELECT count(DISTINCT {ident(ref.target)}), bool_and({ident(ref.target)} = round({ident(ref.target)})) FROM training"
    else:
        sql = "SELECT count(DISTINCT prediction), bool_and(prediction = round(prediction)) FROM predictions"
    distinct, whole = con.execute(sql).fetchone()
    return bool(whole) and 0 < distinct <= 20
