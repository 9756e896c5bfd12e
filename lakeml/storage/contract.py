"""The declarative table contract in ``catalog/``, turned into pyiceberg objects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from lakeml.resources import data_dir

_MAP = re.compile(r"map<\s*(\w+)\s*,\s*(\w+)\s*>")
_LIST = re.compile(r"list<\s*(\w+)\s*>")


@dataclass(frozen=True)
class FieldSpec:
    id: int
    name: str
    type: str
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class PartitionSpecEntry:
    source: str
    transform: str
    name: str


@dataclass(frozen=True)
class TableContract:
    """One lakeml table as declared in ``catalog/tables/<name>.yaml``."""

    name: str
    doc: str
    fields: tuple[FieldSpec, ...]
    partition: tuple[PartitionSpecEntry, ...] = ()
    sort: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def schema(self):
        """The pyiceberg ``Schema`` with the declared field ids and docs."""
        from pyiceberg.schema import Schema
        from pyiceberg.types import NestedField

        next_id = max(f.id for f in self.fields) + 1
        cols = []
        for f in self.fields:
            ftype, next_id = _iceberg_type(f.type, next_id)
            cols.append(NestedField(f.id, f.name, ftype, required=f.required, doc=f.doc or None))
        return Schema(*cols)

    def partition_spec(self, schema):
        from pyiceberg.partitioning import PartitionField, PartitionSpec

        entries = []
        for i, p in enumerate(self.partition):
            src = schema.find_field(p.source)
            entries.append(PartitionField(source_id=src.field_id, field_id=1000 + i,
                                          transform=_transform(p.transform), name=p.name))
        return PartitionSpec(*entries)

    def sort_order(self, schema):
        from pyiceberg.table.sorting import SortField, SortOrder
        from pyiceberg.transforms import IdentityTransform

        if not self.sort:
            return SortOrder()
        return SortOrder(*[SortField(source_id=schema.find_field(c).field_id, transform=IdentityTransform())
                           for c in self.sort])

    def arrow_schema(self):
        """The Arrow schema rows are built with before an append (made once per contract: it is immutable)."""
        cached = self.__dict__.get("_arrow_schema")
        if cached is None:
            from pyiceberg.io.pyarrow import schema_to_pyarrow

            cached = self.__dict__["_arrow_schema"] = schema_to_pyarrow(self.schema(), include_field_ids=False)
        return cached


def _iceberg_type(name: str, next_id: int):
    from pyiceberg import types as t

    prims = {
        "string": t.StringType(), "long": t.LongType(), "int": t.IntegerType(),
        "double": t.DoubleType(), "float": t.FloatType(), "boolean": t.BooleanType(),
        "timestamptz": t.TimestamptzType(), "timestamp": t.TimestampType(), "date": t.DateType(),
        "binary": t.BinaryType(),
    }
    if name in prims:
        return prims[name], next_id
    if m := _MAP.fullmatch(name):
        return t.MapType(next_id, prims[m[1]], next_id + 1, prims[m[2]], value_required=False), next_id + 2
    if m := _LIST.fullmatch(name):
        return t.ListType(next_id, prims[m[1]], element_required=False), next_id + 1
    raise ValueError(f"catalog contract: unknown column type {name!r}")


def _transform(text: str):
    from pyiceberg import transforms as tr

    if m := re.fullmatch(r"bucket\[(\d+)\]", text):
        return tr.BucketTransform(int(m[1]))
    if m := re.fullmatch(r"truncate\[(\d+)\]", text):
        return tr.TruncateTransform(int(m[1]))
    simple = {"identity": tr.IdentityTransform, "day": tr.DayTransform, "month": tr.MonthTransform,
              "year": tr.YearTransform, "hour": tr.HourTransform}
    if text in simple:
        return simple[text]()
    raise ValueError(f"catalog contract: unknown transform {text!r}")


def _yaml(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when PyYAML has it (about 10x faster: every CLI command loads these)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    return _yaml((data_dir("catalog") / "defaults.yaml").read_text()) or {}


def default_namespace() -> str:
    return str(_defaults().get("namespace", "lakeml"))


@lru_cache(maxsize=None)
def load_contracts() -> dict[str, TableContract]:
    """All table contracts, by table name."""
    base_props = {str(k): str(v) for k, v in (_defaults().get("properties") or {}).items()}
    out: dict[str, TableContract] = {}
    for path in sorted((data_dir("catalog") / "tables").glob("*.yaml")):
        raw = _yaml(path.read_text())
        props = dict(base_props)
        props.update({str(k): str(v) for k, v in (raw.get("properties") or {}).items()})
        out[raw["name"]] = TableContract(
            name=raw["name"],
            doc=str(raw.get("doc", "")).strip(),
            fields=tuple(FieldSpec(**f) for f in raw["fields"]),
            partition=tuple(PartitionSpecEntry(**p) for p in raw.get("partition") or ()),
            sort=tuple(raw.get("sort") or ()),
            properties=props,
        )
    return out

