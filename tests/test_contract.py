"""The table contract in catalog/: the created tables match the YAML exactly, and an upgrade
evolves an existing table additively without dropping any logged data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from lakeml.storage.committer import rows_to_arrow
from lakeml.storage.contract import load_contracts
from lakeml.storage.tables import TableStore
from tests.workers.lakes import lake_spec, plain_catalog

CATALOG = Path(__file__).resolve().parent.parent / "catalog"
YAMLS = sorted((CATALOG / "tables").glob("*.yaml"))
DEFAULTS = yaml.safe_load((CATALOG / "defaults.yaml").read_text())


def _expected_type(name: str):
    from pyiceberg import types as t

    prims = {"string": t.StringType(), "long": t.LongType(), "int": t.IntegerType(), "double": t.DoubleType(),
             "boolean": t.BooleanType(), "timestamptz": t.TimestamptzType(), "float": t.FloatType(),
             "timestamp": t.TimestampType(), "date": t.DateType(), "binary": t.BinaryType()}
    if name.startswith("map<"):
        k, val = (s.strip() for s in name[4:-1].split(","))
        return "map", prims[k], prims[val]
    if name.startswith("list<"):
        return "list", prims[name[5:-1].strip()]
    return prims[name]


def test_every_column_is_documented_and_ids_are_unique():
    assert {p.stem for p in YAMLS} >= {"experiments", "runs", "params", "metrics", "tags", "artifacts", "inputs"}
    for path in YAMLS:
        raw = yaml.safe_load(path.read_text())
        assert raw["name"] == path.stem and raw.get("doc"), path
        ids = [f["id"] for f in raw["fields"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate field ids"
        for f in raw["fields"]:
            assert str(f.get("doc", "")).strip(), f"{path.name}: column {f['name']} has no doc"


def test_created_tables_match_the_contract(lake):
    from pyiceberg.table.sorting import NullOrder, SortDirection
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import ListType, MapType

    lake.init()
    catalog = plain_catalog(lake_spec(lake))  # what any Iceberg reader sees
    contracts = load_contracts()
    for path in YAMLS:
        raw = yaml.safe_load(path.read_text())
        tbl = catalog.load_table(f"lakeml.{raw['name']}")
        schema = tbl.schema()
        assert [f.name for f in schema.fields] == [f["name"] for f in raw["fields"]], raw["name"]
        top_ids = {f["id"] for f in raw["fields"]}
        nested_ids: list[int] = []
        for want, got in zip(raw["fields"], schema.fields):
            where = f"{raw['name']}.{want['name']}"
            assert got.field_id == want["id"], where
            assert got.required == bool(want.get("required", False)), where
            assert got.doc == want["doc"], where
            exp = _expected_type(want["type"])
            if isinstance(exp, tuple) and exp[0] == "map":
                assert isinstance(got.field_type, MapType), where
                assert (got.field_type.key_type, got.field_type.value_type) == exp[1:], where
                nested_ids += [got.field_type.key_id, got.field_type.value_id]
            elif isinstance(exp, tuple):
                assert isinstance(got.field_type, ListType) and got.field_type.element_type == exp[1], where
                nested_ids.append(got.field_type.element_id)
            else:
                assert got.field_type == exp, where
        # map key/value (and list element) ids: unique, after the columns, and the ones the package declares
        assert len(set(nested_ids)) == len(nested_ids) and not (set(nested_ids) & top_ids), raw["name"]
        assert schema == contracts[raw["name"]].schema(), raw["name"]

        # partition spec
        spec = tbl.spec()
        want_parts = raw.get("partition") or []
        assert [(schema.find_field(p.source_id).name, str(p.transform), p.name) for p in spec.fields] == \
            [(p["source"], p["transform"], p["name"]) for p in want_parts], raw["name"]
        # sort order
        order = tbl.sort_order()
        assert [schema.find_field(s.source_id).name for s in order.fields] == list(raw.get("sort") or []), raw["name"]
        assert all(s.direction == SortDirection.ASC and isinstance(s.transform, IdentityTransform)
                   and s.null_order == NullOrder.NULLS_FIRST for s in order.fields)
        # properties: the defaults, overridden per table
        props = {**DEFAULTS["properties"], **(raw.get("properties") or {})}
        assert tbl.format_version == int(props.pop("format-version"))
        for k, val in props.items():
            assert tbl.properties.get(k) == str(val), f"{raw['name']}: property {k}"


def test_metrics_partitioning_uses_bucket_of_run_id(lake):
    """Points of one run land in one partition: a run's history reads few files."""
    runs = [lake.create_run("part") for _ in range(3)]
    for r in runs:
        for step in range(10):
            lake.log_metric(r.run_id, "m", float(step), step=step)
    lake.flush()
    tbl = plain_catalog(lake_spec(lake)).load_table("lakeml.metrics")
    files = tbl.inspect.files().to_pylist()
    from pyiceberg.transforms import BucketTransform
    from pyiceberg.types import StringType

    bucket = BucketTransform(16).transform(StringType())
    want = {bucket(r.run_id) for r in runs}
    assert {f["partition"]["run_id_bucket"] for f in files} == want


def _older(name: str, drop_last: int, **changes):
    c = load_contracts()[name]
    return dataclasses.replace(c, fields=c.fields[: len(c.fields) - drop_last], **changes)


@pytest.mark.parametrize("name,drop_last", [("runs", 3), ("experiments", 1), ("metrics", 0)])
def test_additive_evolution_keeps_old_data(lake, name, drop_last):
    current = load_contracts()[name]
    old = _older(name, drop_last, properties={"format-version": "2"})
    old = dataclasses.replace(old, fields=tuple(dataclasses.replace(f, doc="old doc") for f in old.fields))
    old_store = TableStore(lake.config, contracts={**load_contracts(), name: old})
    old_tbl = old_store.table(name)
    assert len(old_tbl.schema().fields) == len(current.fields) - drop_last
    rows = {
        "runs": [("a" * 32, "e", 1_700_000_000_000_000, 0, "FINISHED", "old-run", None, None, None, "u", "s", None,
                  None)],
        "experiments": [("e1", "old-exp", "file:///x", 1_700_000_000_000_000)],
        "metrics": [("a" * 32, "loss", float("nan"), 7, 1_700_000_000_000_000)],
    }[name]
    old_tbl.append(rows_to_arrow(old, rows))

    # a newer lakeml opens the same lake: the table is brought up to the current contract
    new_store = TableStore(lake.config)
    tbl = new_store.table(name)
    assert tbl.schema() == current.schema(), "columns added with the contract's ids, docs updated"
    for k, val in current.properties.items():
        if k != "format-version":
            assert tbl.properties.get(k) == val
    data = tbl.scan().to_arrow().to_pylist()
    assert len(data) == 1
    for i, f in enumerate(old.fields):  # old data intact
        got = data[0][f.name]
        if hasattr(got, "timestamp"):
            got = int(got.timestamp() * 1_000_000)
        assert got == rows[0][i] or (got != got and rows[0][i] != rows[0][i]), f.name
    for f in current.fields[len(old.fields):]:
        assert data[0][f.name] is None
    # and the current lakeml writes into it next to the old row
    tbl.append(rows_to_arrow(current, [rows[0] + (None,) * drop_last]))
    assert len(new_store.reload(name).scan().to_arrow()) == 2


def test_evolution_never_drops_a_column_the_contract_no_longer_has(lake):
    """A column written by some other version (or tool) survives, and lakeml keeps appending."""
    from pyiceberg.types import StringType

    tbl = lake.store.table("tags")
    with tbl.update_schema() as us:
        us.add_column("legacy", StringType(), doc="from an older release")
    tbl = lake.store.reload("tags")
    tbl.append(pa.table({"run_id": ["b" * 32], "key": ["k"], "value": ["v"],
                         "logged_at": pa.array([1_700_000_000_000_000], pa.timestamp("us", tz="UTC")),
                         "deleted": [False], "legacy": ["kept"]},
                        schema=pa.schema([pa.field("run_id", pa.large_string(), False),
                                          pa.field("key", pa.large_string(), False),
                                          pa.field("value", pa.large_string()),
                                          pa.field("logged_at", pa.timestamp("us", tz="UTC"), False),
                                          pa.field("deleted", pa.bool_(), False),
                                          pa.field("legacy", pa.large_string())])))
    fresh = TableStore(lake.config)
    assert "legacy" in [f.name for f in fresh.table("tags").schema().fields]
    run = lake.create_run("legacy")
    lake.set_tag(run.run_id, "t", "v")
    lake.flush()
    rows = plain_catalog(lake_spec(lake)).load_table("lakeml.tags").scan().to_arrow().to_pylist()
    assert {(r["run_id"], r["legacy"]) for r in rows if r["key"] in ("k", "t")} == {("b" * 32, "kept"),
                                                                                   (run.run_id, None)}
