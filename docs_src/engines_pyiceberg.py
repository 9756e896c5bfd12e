"""docs/engines.md: open lakeml's catalog and read a table with plain pyiceberg (no lakeml import)."""

import os
from pathlib import Path

from pyiceberg.catalog import load_catalog

warehouse = Path(os.environ.get("LAKEML_WAREHOUSE", "lakeml-warehouse")).resolve()
# The embedded catalog is pyiceberg's SqlCatalog over <warehouse>/catalog.db. Open it under the
# name "lakeml": the SQLite file keys every table by catalog name, so another name finds no tables.
catalog = load_catalog("lakeml", type="sql", uri=f"sqlite:///{warehouse}/catalog.db",
                       warehouse=warehouse.as_uri())
print("tables:", sorted(name for _, name in catalog.list_tables("lakeml")))

runs = catalog.load_table("lakeml.runs").scan().to_arrow()  # a pyarrow.Table
print("run events:", runs.num_rows, "runs:", len(set(runs["run_id"].to_pylist())))
