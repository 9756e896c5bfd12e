"""Query layer: DuckDB over the lakeml Iceberg tables (views from sql/)."""
