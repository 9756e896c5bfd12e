-- Runs trained on a given snapshot of a table: what to retrain or re-check when that data
-- turns out to be wrong. Parameters: $table ('namespace.table') and $snapshot_id.
SELECT run_id, experiment, run_name, status, role, snapshot_id, logged_at
FROM lakeml.dataset_lineage
WHERE table_identifier = $table AND snapshot_id = $snapshot_id
ORDER BY logged_at;
