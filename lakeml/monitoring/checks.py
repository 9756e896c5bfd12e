"""Run the SQL files of ``sql/monitoring/`` over one model version's predictions, window by window."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeml.monitoring.reference import PREDICTION, Reference, is_classifier, reference_sql, split_columns
from lakeml.resources import data_dir

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

DRIFT = ("psi.sql", "ks.sql", "jsd.sql")
QUALITY = {True: "quality_classifier.sql", False: "quality_regressor.sql"}
OPERATIONS = "operations.sql"


def sql_folder() -> Path:
    return data_dir("sql") / "monitoring"


@lru_cache(maxsize=None)
def statements(name: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The statements of ``sql/monitoring/<name>``, each with the names of its parameters."""
    import duckdb

    return tuple((st.query, frozenset(st.named_parameters))
                 for st in duckdb.extract_statements((sql_folder() / name).read_text()))


@dataclass(frozen=True)
class CheckValue:
    check_name: str
    feature: str | None
    value: float | None
    n: int | None


class WindowChecker:
    """One in-memory DuckDB connection over one model version's predictions, feedback and training data.
    The reference is set (and read) only when a window is to be computed."""

    def __init__(self, predictions: "pa.Table", feedback: "pa.Table"):
        import duckdb

        self.ref: Reference | None = None
        self.numeric: list[str] = []
        self.categorical: list[str] = []
        self.classifier = False
        self.con = duckdb.connect()
        self.con.register("predictions", predictions)
        self.con.register("feedback", feedback)

    def set_reference(self, ref: Reference) -> None:
        """Use ``ref`` (the training data) for drift: feature kinds, the target, ``reference_num/cat``."""
        self.ref = ref
        seen = [r[0] for r in self.con.execute(
            "SELECT DISTINCT unnest(json_keys(features)) FROM predictions "
            "WHERE row_index >= 0 AND json_valid(features) AND json_type(features) = 'OBJECT' "
            "UNION SELECT DISTINCT unnest(from_json(feature_names, '[\"VARCHAR\"]')) FROM predictions "
            "WHERE row_index >= 0 AND feature_names IS NOT NULL").fetchall()]
        if ref.table is not None:
            self.con.register("training", ref.table)
        self.numeric, self.categorical = split_columns(ref, seen)
        self.classifier = is_classifier(self.con, ref)
        num, cat = reference_sql(self.numeric, self.categorical, ref.target, self.classifier)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE reference_num AS {num}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE reference_cat AS {cat}")
        for st, _ in statements("reference.sql"):
            self.con.execute(st)

    def close(self) -> None:
        self.con.close()

    def select_window(self, start_us: int, end_us: int) -> int:
        """Bind the window (``window.sql``); returns how many of its rows have a label."""
        from lakeml.clock import us_to_datetime

        params = {"start": us_to_datetime(start_us), "end": us_to_datetime(end_us),
                  "numeric": self.numeric, "categorical": self.categorical}
        for st, names in statements("window.sql"):
            self.con.execute(st, {k: params[k] for k in names} or None)
        return self.con.execute("SELECT count(*) FROM scored").fetchone()[0]

    def run_checks(self, seconds: int, min_rows: int = 0) -> list[CheckValue]:
        """Every check on the bound window; drift only when the window has ``min_rows`` scored rows."""
        out: list[CheckValue] = []
        rows = self.con.execute("SELECT count(*) FROM current_rows WHERE row_index >= 0").fetchone()[0]
        if self.ref is None:
            raise RuntimeError("set_reference() before run_checks()")
        drift = self.ref.table is not None and rows >= max(min_rows, 1)
        files = [*(DRIFT if drift else ()), QUALITY[self.classifier], OPERATIONS]
        for name in files:
            for st, names in statements(name):
                rows = self.con.execute(st, {k: {"seconds": seconds}[k] for k in names} or None).fetchall()
                out += [_value(*r) for r in rows]
        return out


def _value(check: str, feature: str | None, value: Any, n: Any) -> CheckValue:
    v = None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)
    if feature == PREDICTION:
        return CheckValue(f"prediction_{check}", None, v, None if n is None else int(n))
    return CheckValue(check, feature, v, None if n is None else int(n))
