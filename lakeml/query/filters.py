"""MLflow-style search filters, translated into safe DuckDB SQL.

Grammar: ``<clause> [AND <clause>]...`` where a clause is
``<entity>.<key> <op> <value>``; entity is ``metrics``, ``params``, ``tags`` or
``attributes`` (run_id, run_name, status, start_time, end_time, experiment_id,
user, parent_run_id). Ops: = != < <= > >= LIKE ILIKE, ``IN (...)``, ``NOT IN (...)``,
``IS NULL`` and ``IS NOT NULL``. Keys with odd characters are quoted with
backticks or double quotes: ``metrics."val/auc" > 0.9``.
Only these tokens are accepted, so a filter can never inject SQL.
"""

from __future__ import annotations

import re
from typing import Callable

from lakeml.errors import InvalidInputError

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


def _column(ident: str, resolve: Resolver = map_resolver) -> tuple[str, str]:
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
        return ent, f'r."{key}"'
    return ent, resolve(ent, key)


def translate(text: str | None, resolve: Resolver = map_resolver) -> tuple[str, set[str]]:
    """Return ``(SQL boolean expression, entities used)`` for a filter string."""
    if text is None or not text.strip():
        return "TRUE", set()
    toks = _tokens(text)
    out: list[str] = []
    used: set[str] = set()
    i = 0

    def value(tok: tuple[str, str], numeric: bool) -> str:
        kind, v = tok
        if kind == "string":
            return v
        if kind == "number":
            return v if numeric else f"'{v}'"
        raise InvalidInputError(f"expected a value ('text' or a number) in search filter, got {v!r}")

    while i < len(toks):
        kind, v = toks[i]
        if kind != "ident":
            raise InvalidInputError(f"expected <entity>.<key> in search filter, got {v!r}")
        ent, col = _column(v, resolve)
        used.add(ent)
        numeric = ent == "metrics"
        i += 1
        if i >= len(toks):
            raise InvalidInputError(f"search filter ends after {v!r}; add a comparison such as '> 0.5'")
        kind, op = toks[i]
        upper = op.upper()
        if kind == "op":
            op = "!=" if op == "<>" else op
            if i + 1 >= len(toks):
                raise InvalidInputError(f"search filter ends after {op!r}; add a value")
            rhs = value(toks[i + 1], numeric or (toks[i + 1][0] == "number" and ent == "attributes"))
            out.append(f"{col} {op} {rhs}")
            i += 2
        elif kind == "bare" and upper in ("LIKE", "ILIKE"):
            out.append(f"{col} {upper} {value(toks[i + 1], False)}")
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
                    vals.append(value(toks[j], numeric))
                j += 1
            if j >= len(toks) or not vals:
                raise InvalidInputError("unterminated or empty IN (...) list in search filter")
            out.append(f"{col} {'NOT ' if neg else ''}IN ({', '.join(vals)})")
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


def order_clause(order_by: list[str] | None, resolve: Resolver = map_resolver) -> str:
    """``["metrics.auc DESC", "attributes.start_time"]`` -> SQL ORDER BY items."""
    items = []
    for item in order_by or []:
        parts = item.strip().rsplit(None, 1)
        direction = "ASC"
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            item, direction = parts[0], parts[1].upper()
        toks = _tokens(item)
        if len(toks) != 1 or toks[0][0] != "ident":
            raise InvalidInputError(f"cannot order by {item!r}; use e.g. 'metrics.auc DESC'")
        items.append(f"{_column(toks[0][1], resolve)[1]} {direction} NULLS LAST")
    items.append('r."start_time" DESC')
    return ", ".join(items)
