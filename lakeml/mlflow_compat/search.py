"""MLflow search arguments -> lakeml ``search_runs`` arguments, and MLflow's page tokens.

lakeml's filter grammar (:mod:`lakeml.query.filters`) is MLflow's: ``metrics.x > 0.5 and
params.p = 'a' and tags.t LIKE '%x%'``, ``attributes.status = 'FINISHED'``, ``IN (...)``. What differs
is renamed here: MLflow's ``attributes.user_id`` is lakeml's ``attributes.user``; the system tags
that lakeml keeps in run columns (``tags.mlflow.runName``, ``tags.mlflow.parentRunId``) are those
columns; ``attributes.created``/``Created`` is ``start_time``; an identifier without an entity
(``run_name``, ``status``) is an attribute, as in MLflow. Literals inside quotes are never touched.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Iterable

from lakeml.errors import InvalidInputError
from lakeml.mlflow_compat import tags as T

#: MLflow's ceiling for search_runs max_results (SEARCH_MAX_RESULTS_THRESHOLD)
MAX_RESULTS_THRESHOLD = 50_000
DEFAULT_MAX_RESULTS = 1000

_ATTRIBUTE_NAMES = {
    "user_id": "user", "user": "user", "run_id": "run_id", "run_uuid": "run_id", "run_name": "run_name",
    "status": "status", "start_time": "start_time", "end_time": "end_time", "created": "start_time",
    "experiment_id": "experiment_id", "parent_run_id": "parent_run_id",
}
_TAG_COLUMNS = {T.RUN_NAME: "run_name", T.PARENT_RUN_ID: "parent_run_id"}
_ENTITIES = {"metric", "metrics", "param", "params", "parameter", "parameters", "tag", "tags", "attribute",
             "attributes", "attr", "run", "dataset", "datasets"}
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null", "asc", "desc"}

# a quoted literal, or an identifier (entity.key with an optional quoted key, or a bare word)
_PIECE = re.compile(r"""('(?:[^']|'')*')
                       |(?P<ident>[A-Za-z_][\w]*(?:\.(?:`[^`]+`|"[^"]+"|[\w\-./:]+))?)""", re.X)


def _unquote(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"":
        return key[1:-1]
    return key


def _rewrite_ident(ident: str, where: str) -> str:
    ent, dot, key = ident.partition(".")
    low = ent.lower()
    if not dot:
        if low in _KEYWORDS or low in ("true", "false"):
            return ident
        attr = _ATTRIBUTE_NAMES.get(low) or _ATTRIBUTE_NAMES.get(ident)
        if attr is None:
            raise InvalidInputError(f"{where}: {ident!r} is not an attribute; name metrics, params and tags as "
                                    "metrics.<key>, params.<key>, tags.<key>, attributes as attributes.<name> "
                                    f"(one of {sorted(set(_ATTRIBUTE_NAMES))})")
        return f"attributes.{attr}"
    if low not in _ENTITIES:
        return ident  # not an identifier lakeml's parser knows: let it say so
    bare = _unquote(key)
    if low in ("attribute", "attributes", "attr", "run"):
        attr = _ATTRIBUTE_NAMES.get(bare.lower())
        if attr is None:
            raise InvalidInputError(f"{where}: attributes.{bare} is not supported; use one of "
                                    f"{sorted(set(_ATTRIBUTE_NAMES))}")
        return f"attributes.{attr}"
    if low in ("tag", "tags") and bare in _TAG_COLUMNS:
        return f"attributes.{_TAG_COLUMNS[bare]}"
    if low in ("dataset", "datasets"):
        raise InvalidInputError(f"{where}: datasets.{bare} filters are not supported by lakeml's MLflow API; "
                                "query lakeml.inputs with SQL instead")
    return ident


def _rewrite(text: str, where: str) -> str:
    out, pos = [], 0
    for m in _PIECE.finditer(text):
        out.append(text[pos:m.start()])
        piece = m.group(0)
        out.append(_rewrite_ident(piece, where) if m.group("ident") else piece)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def translate_filter(filter_string: str | None) -> str | None:
    """An MLflow ``search_runs`` filter as a lakeml filter (None or blank -> None)."""
    if filter_string is None or not str(filter_string).strip():
        return None
    if not isinstance(filter_string, str):
        raise InvalidInputError(f"filter must be a string, got {filter_string!r}")
    return _rewrite(filter_string, "filter")


def translate_order_by(order_by: Iterable[str] | None) -> list[str] | None:
    """MLflow ``order_by`` items (``metrics.auc DESC``, ``attributes.start_time``...) as lakeml's."""
    if not order_by:
        return None
    if isinstance(order_by, str):
        order_by = [order_by]
    items = []
    for item in order_by:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInputError(f"order_by item {item!r} must be a non-empty string like 'metrics.auc DESC'")
        items.append(_rewrite(item.strip(), "order_by"))
    return items


# -- paging -------------------------------------------------------------------------------------
def encode_page_token(offset: int) -> str:
    """MLflow's page token for the page starting at ``offset`` (base64 of ``{"offset": n}``, as MLflow's stores)."""
    return base64.b64encode(json.dumps({"offset": int(offset)}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a page token stands for (0 for none); InvalidInputError for a token lakeml did not make."""
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token, validate=False).decode("utf-8"))
        offset = data["offset"]
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
        return offset
    except Exception:
        raise InvalidInputError(f"invalid page_token {token!r}: pass the next_page_token of the previous "
                                "search response unchanged") from None


def max_results_value(value: Any, default: int = DEFAULT_MAX_RESULTS) -> int:
    """``max_results`` as an int in 1..50000 (MLflow's limit), or InvalidInputError."""
    if value is None or value == "":
        return default
    try:
        n = int(value)
        if isinstance(value, bool) or (isinstance(value, float) and value != n):
            raise ValueError(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"max_results must be an integer, got {value!r}") from None
    if not 1 <= n <= MAX_RESULTS_THRESHOLD:
        raise InvalidInputError(f"max_results must be between 1 and {MAX_RESULTS_THRESHOLD}, got {n}")
    return n


def page(rows: list[Any], offset: int, max_results: int) -> tuple[list[Any], str | None]:
    """Given up to ``max_results + 1`` rows from ``offset``, the page and the next token (None at the end)."""
    if len(rows) > max_results:
        return rows[:max_results], encode_page_token(offset + max_results)
    return rows, None


def run_view_type(value: Any) -> str:
    """MLflow's ``run_view_type`` (ACTIVE_ONLY, DELETED_ONLY, ALL, or their numbers 1, 2, 3)."""
    names = {None: "ACTIVE_ONLY", "": "ACTIVE_ONLY", 1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL",
             "1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
    if value in names:
        return names[value]
    if isinstance(value, str) and value.upper() in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        return value.upper()
    raise InvalidInputError(f"run_view_type must be ACTIVE_ONLY, DELETED_ONLY or ALL, got {value!r}")
