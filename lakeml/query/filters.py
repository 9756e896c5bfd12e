"""MLflow-style search filters, translated into safe DuckDB SQL.

Grammar: ``<clause> [AND <clause>]...`` where a clause is
``<entity>.<key> <op> <value>``; entity is ``metrics``, ``params``, ``tags`` or
``attributes`` (run_id, run_name, status, start_time, end_time, experiment_id,
user, parent_run_id). Ops: = != < <= > >= LIKE ILIKE, ``IN (...)``, ``NOT IN (...)``,
``IS NULL`` and ``IS NOT NULL``. Keys with odd characters are quoted with
backticks or double quotes: ``metrics."val/auc" > 0.9``.
Only these tokens are accepted, so a filter can never inject SQL.

How values compare:

* metrics are numbers: the value must be a number (``'nan'`` and ``'inf'`` as strings);
  LIKE is refused.
* params and tags are text, compared **numerically when both sides parse as numbers**
  (``params.max_depth > 10`` does not match ``'6'``), else as strings.
* ``attributes.start_time``/``end_time`` take milliseconds since the epoch
  (``attributes.start_time > 1700000000000``) or an ISO timestamp string.

A filter has at most :data:`MAX_CLAUSES` clauses naming at most :data:`MAX_KEYS`
distinct keys, and is at most :data:`MAX_FILTER_LENGTH` characters long.
"""

from __future__ import annotations

import re
from typing import Callable

from lakeml.errors import InvalidInputError
from lakeml.validation import utf8_text

MAX_FILTER_LENGTH = 20_000  # characters of one filter string
MAX_CLAUSES = 100  # clauses joined by AND
MAX_KEYS = 30  # distinct metrics/params/tags named by the filter and the order (each is one join)
MAX_IN_VALUES = 1000  # values of one IN (...) list
MAX_ORDER_ITEMS = 10  # items of order_by

# (entity, key) -> SQL expression for that value; the default reads maps named params/metrics/tags.
Resolver = Callable[[str, str], str]


def map_resolver(ent: str, key: str) -> str:
    return f"{ent}['" + key.replace("'", "''") + "']"

ATTRIBUTES = {"run_id", "run_name", "status", "start_time", "end_time", "experiment_id", "user",
              "parent_run_id", "experiment_name", "source", "git_commit"}
_ENTITY_ALIASES = {"metric": "metrics", "metrics": "metrics", "param": "params", "params": "params",
                   "parameter": "params", "parameters": "params", "tag": "tags", "tags": "tags",
                   "attribute": "attributes", "attributes": "attributes", "attr": "attributes", "run": "attributes"}
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<ident>[A-Za-z_][\w]*\.(?:`[^`]+`|"[^"]+"|[\w\-./:]+))
    | (?P<bare>[A-Za-z_]\w*)
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    )""", re.X)


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInputError(f"cannot parse search filter at {text[pos:pos + 20]!r}; expected e.g. "
                                    "\"metrics.auc > 0.9 AND params.max_depth = '6'\"")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _column(ident: str, resolve: Resolver = map_resolver) -> tuple[str, str, str]:
    entity, _, key = ident.partition(".")
    ent = _ENTITY_ALIASES.get(entity.lower())
    if ent is None:
        raise InvalidInputError(f"unknown entity {entity!r} in search filter; use metrics., params., tags. "
                                "or attributes.")
    if key[:1] in "`\"":
        key = key[1:-1]
    if ent == "attributes":
        if key not in ATTRIBUTES:
            raise InvalidInputError(f"unknown run attribute {key!r}; known: {', '.join(sorted(ATTRIBUTES))}")
        return ent, key, f'r."{key}"'
    return ent, key, resolve(ent, key)


def translate(text: str | None, resolve: Resolver = map_resolver) -> tuple[str, set[str]]:
    """Return ``(SQL boolean expression, entities used)`` for a filter string."""
    if text is None:
        return "TRUE", set()
    if not isinstance(text, str):
        raise InvalidInputError(f"search filter must be a string such as \"metrics.auc > 0.9\", got "
                                f"{type(text).__name__}")
    if not text.strip():
        return "TRUE", set()
    utf8_text(text, "search filter")
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInputError(f"search filter is {len(text)} characters; the limit is {MAX_FILTER_LENGTH}. "
                                "Filter on fewer keys, or query lakeml.runs_latest with lake.sql")
    toks = _tokens(text)
    out: list[str] = []
    used: set[str] = set()
    keys: set[tuple[str, str]] = set()
    i = clauses = 0

    def need(j: int, what: str) -> tuple[str, str]:
        if j >= len(toks):
            raise InvalidInputError(f"search filter ends after {toks[-1][1]!r}; expected {what}")
        return toks[j]

    while i < len(toks):
        kind, v = toks[i]
        if kind != "ident":
            raise InvalidInputError(f"expected <entity>.<key> in search filter, got {v!r}")
        clauses += 1
        if clauses > MAX_CLAUSES:
            raise InvalidInputError(f"search filter has more than {MAX_CLAUSES} clauses; the limit is "
                                    f"{MAX_CLAUSES}. Narrow it, or query lakeml.runs_latest with lake.sql")
        ent, key, col = _column(v, resolve)
        used.add(ent)
        if ent != "attributes":
            keys.add((ent, key))
            if len(keys) > MAX_KEYS:
                raise InvalidInputError(f"search filter names more than {MAX_KEYS} distinct metrics, params and "
                                        f"tags; the limit is {MAX_KEYS}. Narrow it, or query lakeml.runs_latest "
                                        "with lake.sql")
        side = _Side(ent, key, col)
        i += 1
        kind, op = need(i, "a comparison such as '> 0.5'")
        upper = op.upper()
        if kind == "op":
            op = "!=" if op == "<>" else op
            out.append(side.compare(op, need(i + 1, "a value ('text' or a number)")))
            i += 2
        elif kind == "bare" and upper in ("LIKE", "ILIKE"):
            out.append(side.like(upper, need(i + 1, "a pattern such as 'xgb%'")))
            i += 2
        elif kind == "bare" and upper == "IS":
            neg = i + 1 < len(toks) and toks[i + 1][1].upper() == "NOT"
            j = i + 2 if neg else i + 1
            if j >= len(toks) or toks[j][1].upper() != "NULL":
                raise InvalidInputError("expected IS NULL or IS NOT NULL in search filter")
            out.append(f"{col} IS {'NOT ' if neg else ''}NULL")
            i = j + 1
        elif kind == "bare" and upper in ("IN", "NOT"):
            neg = upper == "NOT"
            if neg:
                i += 1
                if i >= len(toks) or toks[i][1].upper() != "IN":
                    raise InvalidInputError("expected NOT IN (...) in search filter")
            if i + 1 >= len(toks) or toks[i + 1][1] != "(":
                raise InvalidInputError("IN needs a parenthesised list, e.g. params.model IN ('xgb', 'lgbm')")
            j, vals = i + 2, []
            while j < len(toks) and toks[j][1] != ")":
                if toks[j][1] != ",":
                    vals.append(toks[j])
                j += 1
            if j >= len(toks) or not vals:
                raise InvalidInputError("unterminated or empty IN (...) list in search filter")
            if len(vals) > MAX_IN_VALUES:
                raise InvalidInputError(f"IN list has {len(vals)} values; the limit is {MAX_IN_VALUES}")
            out.append(side.within(vals, neg))
            i = j + 1
        else:
            raise InvalidInputError(f"unsupported operator {op!r} in search filter; use = != < <= > >= LIKE "
                                    "ILIKE IN, NOT IN, IS NULL")
        if i < len(toks):
            if toks[i][1].upper() != "AND":
                raise InvalidInputError(f"expected AND between search clauses, got {toks[i][1]!r}")
            out.append("AND")
            i += 1
            if i >= len(toks):
                raise InvalidInputError("search filter ends with AND")
    return " ".join(out), used


_TIME_ATTRIBUTES = {"start_time", "end_time"}


def _text(tok: tuple[str, str]) -> str:
    """The value of a string or number token as Python text."""
    kind, v = tok
    if kind == "string":
        return v[1:-1].replace("''", "'")
    if kind == "number":
        return v
    raise InvalidInputError(f"expected a value ('text' or a number) in search filter, got {v!r}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class _Side:
    """The left side of one clause: how its entity compares with a value."""

    def __init__(self, ent: str, key: str, col: str):
        self.ent, self.key, self.col = ent, key, col
        self.time = ent == "attributes" and key in _TIME_ATTRIBUTES

    def _metric(self, tok: tuple[str, str]) -> str:
        text = _text(tok)
        if _number(text) is None:
            raise InvalidInputError(f"metric {self.key!r} is a number, so it cannot be compared with {tok[1]}; "
                                    "compare it with a number, e.g. metrics.loss < 0.5")
        return tok[1] if tok[0] == "number" else f"CAST({_quote(text.strip())} AS DOUBLE)"

    def _time(self, tok: tuple[str, str]) -> tuple[str, str]:
        """(column expression, value) for a time attribute: epoch milliseconds or an ISO timestamp."""
        if tok[0] == "number":
            ms = _number(tok[1])
            if ms is None or not ms.is_integer() or abs(ms) > 2**62:
                raise InvalidInputError(f"attributes.{self.key} takes milliseconds since the epoch (an integer) "
                                        f"or an ISO timestamp string, got {tok[1]}")
            return f"epoch_ms({self.col})", str(int(ms))
        from datetime import datetime, timezone

        text = _text(tok)
        try:
            ts = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InvalidInputError(f"attributes.{self.key} takes milliseconds since the epoch or an ISO timestamp "
                                    f"such as '2024-05-01T12:00:00+00:00', got {tok[1]}") from None
        if ts.tzinfo is None:  # a naive timestamp is UTC, as lakeml stores times
            ts = ts.replace(tzinfo=timezone.utc)
        return self.col, f"CAST({_quote(ts.isoformat())} AS TIMESTAMPTZ)"

    def compare(self, op: str, tok: tuple[str, str]) -> str:
        if self.ent == "metrics":
            return f"{self.col} {op} {self._metric(tok)}"
        if self.time:
            col, val = self._time(tok)
            return f"{col} {op} {val}"
        text = _text(tok)
        if self.ent in ("params", "tags") and _number(text) is not None:
            num = f"TRY_CAST({self.col} AS DOUBLE)"
            return (f"(CASE WHEN {num} IS NULL THEN {self.col} {op} {_quote(text)} "
                    f"ELSE {num} {op} CAST({_quote(text.strip())} AS DOUBLE) END)")
        return f"{self.col} {op} {_quote(text)}"

    def like(self, op: str, tok: tuple[str, str]) -> str:
        if self.ent == "metrics" or self.time:
            raise InvalidInputError(f"{op} matches text, and {self.ent}.{self.key} is not text; use = < > instead")
        return f"{self.col} {op} {_quote(_text(tok))}"

    def within(self, toks: list[tuple[str, str]], neg: bool) -> str:
        if self.ent == "metrics":
            col, vals = self.col, [self._metric(t) for t in toks]
        elif self.time:
            pairs = [self._time(t) for t in toks]
            if len({c for c, _ in pairs}) > 1:
                raise InvalidInputError(f"IN list of attributes.{self.key}: use all milliseconds or all timestamps")
            col, vals = pairs[0][0], [v for _, v in pairs]
        else:
            col, vals = self.col, [_quote(_text(t)) for t in toks]
        return f"{col} {'NOT ' if neg else ''}IN ({', '.join(vals)})"


def order_clause(order_by: list[str] | str | None, resolve: Resolver = map_resolver) -> str:
    """``["metrics.auc DESC", "attributes.start_time"]`` -> SQL ORDER BY items (one string is one item)."""
    if isinstance(order_by, str):
        order_by = [order_by]
    if order_by is not None and not isinstance(order_by, (list, tuple)):
        raise InvalidInputError(f"order_by must be a list of strings such as ['metrics.auc DESC'], got "
                                f"{type(order_by).__name__} {order_by!r:.60}")
    if order_by and len(order_by) > MAX_ORDER_ITEMS:
        raise InvalidInputError(f"order_by has {len(order_by)} items; the limit is {MAX_ORDER_ITEMS}")
    items = []
    for item in order_by or []:
        if not isinstance(item, str):
            raise InvalidInputError(f"order_by items are strings such as 'metrics.auc DESC', got "
                                    f"{type(item).__name__} {item!r:.60}")
        parts = item.strip().rsplit(None, 1)
        direction = "ASC"
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            item, direction = parts[0], parts[1].upper()
        toks = _tokens(item)
        if len(toks) != 1 or toks[0][0] != "ident":
            raise InvalidInputError(f"cannot order by {item!r}; use e.g. 'metrics.auc DESC'")
        items.append(f"{_column(toks[0][1], resolve)[2]} {direction} NULLS LAST")
    items.append('r."start_time" DESC')
    return ", ".join(items)
