"""Experiment data joined with the lakehouse's own tables, in the same catalog, in one query."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.expressions import LessThanOrEqual


def feature_rows(ids, version: int = 1) -> pa.Table:
    return pa.table({"customer_id": pa.array(ids, pa.int64()),
                     "spend_30d": pa.array([float(i * 10 + version) for i in ids], pa.float64()),
                     "churned": pa.array([i % 3 == 0 for i in ids], pa.bool_())})


@pytest.fixture
def features(lake):
    """A real feature table ``sales.features`` in the lake's own catalog."""
    cat = lake.store.catalog
    cat.create_namespace("sales")
    tbl = cat.create_table("sales.features", schema=feature_rows([1]).schema)
    tbl.append(feature_rows(range(1, 101)))
    return tbl


def test_runs_on_two_snapshots_and_the_rows_that_changed(lake, features):
    # run 1 trains on snapshot A: customers 1..100
    r1 = lake.create_run("churn", run_name="monday")
    in1 = lake.log_input(r1.run_id, table="sales.features")
    lake.set_terminated(r1.run_id)
    # the table changes: 20 new customers, customers 1..10 deleted
    features.append(feature_rows(range(101, 121)))
    features.delete(LessThanOrEqual("customer_id", 10))
    features = lake.store.catalog.load_table("sales.features")
    # run 2 trains on snapshot B
    r2 = lake.create_run("churn", run_name="friday")
    in2 = lake.log_input(r2.run_id, table="sales.features")
    lake.set_terminated(r2.run_id)
    assert in1.snapshot_id != in2.snapshot_id
    assert in2.snapshot_id == features.current_snapshot().snapshot_id

    # the current table is queryable under its namespace, next to the lakeml tables
    assert lake.sql("SELECT count(*) FROM sales.features").item() == 110
    joined = lake.sql("""
        SELECT r.run_name, count(f.customer_id) AS customers_now
        FROM lakeml.runs_latest r JOIN lakeml.inputs i USING (run_id)
        JOIN sales.features f ON i.table_identifier = 'sales.features'
        GROUP BY 1 ORDER BY 1""")
    assert joined.rows() == [("friday", 110), ("monday", 110)]

    # one query: which runs saw the rows that changed between the two snapshots
    changed = lake.sql("""
        WITH seen AS (          -- every row each run trained on, from the snapshot it logged
            SELECT l.run_name, s.*
            FROM lakeml.dataset_lineage l
            JOIN sales.features__snapshots s USING (snapshot_id)
            WHERE l.table_identifier = 'sales.features'),
        changed AS (            -- rows that are not in every one of those snapshots
            SELECT customer_id, spend_30d, churned FROM seen
            GROUP BY ALL HAVING count(DISTINCT snapshot_id) < (SELECT count(DISTINCT snapshot_id) FROM seen))
        SELECT s.run_name, s.snapshot_id,
               count(*) FILTER (WHERE s.customer_id <= 10) AS rows_later_deleted,
               count(*) FILTER (WHERE s.customer_id > 100) AS rows_added_later,
               list(s.customer_id ORDER BY s.customer_id) AS customers
        FROM seen s JOIN changed c USING (customer_id, spend_30d, churned)
        GROUP BY 1, 2 ORDER BY 1""")
    rows = {r["run_name"]: r for r in changed.iter_rows(named=True)}
    assert set(rows) == {"monday", "friday"}
    assert rows["monday"]["snapshot_id"] == in1.snapshot_id
    assert rows["monday"]["customers"] == list(range(1, 11))
    assert rows["friday"]["customers"] == list(range(101, 121))
    assert (rows["monday"]["rows_later_deleted"], rows["friday"]["rows_added_later"]) == (10, 20)


def test_other_namespaces_appear_without_reconnecting(file_lake):
    assert file_lake.sql("SELECT count(*) FROM lakeml.runs").item() == 0
    cat = file_lake.store.catalog
    cat.create_namespace("crm")
    tbl = cat.create_table("crm.accounts", schema=feature_rows([1]).schema)
    tbl.append(feature_rows([1, 2, 3]))
    assert file_lake.sql("SELECT count(*) FROM crm.accounts").item() == 3
    assert "crm.accounts" in file_lake.sql_tables()
    tbl.append(feature_rows([4]))
    assert file_lake.sql("SELECT max(customer_id) FROM crm.accounts").item() == 4


@pytest.mark.seaweedfs
def test_rest_catalog_is_attached(seaweed_table_bucket):
    """On a REST catalog DuckDB ATTACHes the catalog; other namespaces are views into it."""
    import lakeml

    server, table_bucket = seaweed_table_bucket
    lake = lakeml.connect(commit_interval=0.2, commit_deadline=60, **server.catalog_props(table_bucket))
    try:
        cat = lake.store.catalog
        cat.create_namespace("sales")
        tbl = cat.create_table("sales.features", schema=feature_rows([1]).schema)
        tbl.append(feature_rows(range(1, 6)))
        r = lake.create_run("churn", run_name="rest")
        lake.log_input(r.run_id, table="sales.features")
        lake.set_terminated(r.run_id)
        tbl.append(feature_rows(range(6, 9)))

        assert lake.sql("SELECT count(*) FROM sales.features").item() == 8
        assert "lakeml_catalog" in " ".join(lake.engine.table_names())
        saw = lake.sql("""SELECT l.run_name, count(*) AS n FROM lakeml.dataset_lineage l
                          JOIN sales.features__snapshots s USING (snapshot_id) GROUP BY 1""")
        assert saw.rows() == [("rest", 5)]
        with pytest.raises(lakeml.errors.ReadOnlyError):
            lake.sql("INSERT INTO lakeml_catalog.sales.features SELECT * FROM sales.features")
    finally:
        lake.close()
