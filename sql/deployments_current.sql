-- What runs where now: one row per active deployment, with the model version, its aliases,
-- the run that trained it, the code version and the exact input table snapshots it was trained on.
CREATE OR REPLACE VIEW lakeml.deployments_current AS
WITH d AS (
    SELECT * FROM lakeml.deployments_latest WHERE retired_at IS NULL
), v AS (
    SELECT * FROM lakeml.model_versions_latest
), a AS (
    SELECT model_name, version, string_agg(alias, ', ' ORDER BY alias) AS aliases
    FROM lakeml.model_aliases_latest GROUP BY model_name, version
), r AS (
    SELECT * FROM lakeml.runs_latest WHERE run_id IN (SELECT run_id FROM v)
), i AS (
    SELECT run_id,
           string_agg(DISTINCT role || ': ' || CASE WHEN kind = 'iceberg'
                          THEN coalesce(table_identifier, name) || '@' || snapshot_id
                          ELSE coalesce(uri, name) || ' (' || coalesce(digest, '?') || ')' END, '; ') AS trained_on,
           list(DISTINCT {'role': role, 'kind': kind, 'table': table_identifier, 'snapshot_id': snapshot_id,
                          'uri': uri, 'digest': digest}) AS training_inputs
    FROM lakeml.inputs WHERE run_id IN (SELECT run_id FROM v)
    GROUP BY run_id
)
SELECT d.environment,
       d.service,
       d.service_version,
       d.model_name,
       d.version,
       'models:/' || d.model_name || '/' || d.version AS model_uri,
       a.aliases,
       d.deployed_at,
       d.deployed_by,
       d.deployment_id,
       v.flavor,
       v.source_uri,
       v.run_id,
       r.run_name,
       r.experiment_name,
       r.git_commit,
       r.user AS trained_by,
       i.trained_on,
       i.training_inputs
FROM d
LEFT JOIN v ON v.model_name = d.model_name AND v.version = d.version
LEFT JOIN a ON a.model_name = d.model_name AND a.version = d.version
LEFT JOIN r ON r.run_id = v.run_id
LEFT JOIN i ON i.run_id = v.run_id;
