-- Dataset lineage: which run read which table snapshot (or file digest), with the
-- run's experiment, name and status. Join snapshot_id with the table's own history
-- to see what changed between two runs' data.
CREATE OR REPLACE VIEW lakeml.dataset_lineage AS
SELECT i.run_id,
       coalesce(e.name, r.experiment_name) AS experiment,
       r.run_name, r.status, r.start_time,
       i.role, i.kind, i.name, i.table_identifier, i.snapshot_id, i.schema_id,
       i.uri, i.digest, i.catalog, i.logged_at
FROM (
  SELECT run_id, role, kind, name, table_identifier, snapshot_id, schema_id, uri, digest, catalog,
         min(logged_at) AS logged_at
  FROM lakeml.inputs
  GROUP BY ALL
) i
LEFT JOIN lakeml.runs_latest r USING (run_id)
LEFT JOIN lakeml.experiments_latest e USING (experiment_id);
