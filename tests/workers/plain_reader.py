"""Read every metric point back with pyiceberg alone (no lakeml import) and print per-run checks as JSON.

Usage: python tests/workers/plain_reader.py '<plain catalog properties json>'
"""

from __future__ import annotations

import json
import sys

import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog


def main(props: dict) -> None:
    name = props.pop("catalog_name")
    catalog = SqlCatalog(name, **props)
    tbl = catalog.load_table("lakeml.metrics").scan().to_arrow()
    out = {}
    for run_id in pc.unique(tbl["run_id"]).to_pylist():
        rows = tbl.filter(pc.equal(tbl["run_id"], run_id))
        out[run_id] = {"count": rows.num_rows, "distinct_steps": pc.count_distinct(rows["step"]).as_py(),
                       "sum_steps": pc.sum(rows["step"]).as_py(), "sum_values": pc.sum(rows["value"]).as_py(),
                       "min_value": pc.min(rows["value"]).as_py()}
    assert not any(m == "lakeml" or m.startswith("lakeml.") for m in sys.modules), "plain reader imported lakeml"
    print(json.dumps(out))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
