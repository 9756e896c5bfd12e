-- Lineage of every model version: version -> run -> params, metrics, code version -> input snapshots.
-- One row per (model version, input the run read); a version whose run logged no input has one row
-- with null input columns. Deployment columns say where it runs now and where it ever ran.
CREATE OR REPLACE VIEW lakeml.model_lineage AS
WITH v AS (
    SELECT * FROM lakeml.model_versions_latest
), a AS (
    SELECT model_name, version, string_agg(alias, ', ' ORDER BY alias) AS aliases
    FROM lakeml.model_aliases_latest GROUP BY model_name, version
), dl AS (
    SELECT * FROM lakeml.deployments_latest
), dep AS (
    SELECT model_name, version,
           string_agg(CASE WHEN retired_at IS NULL THEN environment || '/' || service END, ', '
                      ORDER BY environment, service) AS deployed_now,
           string_agg(DISTINCT environment, ', ' ORDER BY environment) AS ever_deployed_to
    FROM dl GROUP BY model_name, version
), r AS (
    SELECT * FROM lakeml.runs_latest WHERE run_id IN (SELECT run_id FROM v)
), p AS (
    SELECT run_id, map(list(key ORDER BY key), list(value ORDER BY key)) AS params FROM (
        SELECT run_id, key, any_value(value) AS value FROM lakeml.params
        WHERE run_id IN (SELECT run_id FROM v) GROUP BY run_id, key)
    GROUP BY run_id
), mt AS (
    SELECT run_id, map(list(key ORDER BY key), list(value ORDER BY key)) AS metrics FROM (
        SELECT run_id, key, max(struct_pack(step, timestamp, value)).value AS value FROM lakeml.metrics
        WHERE run_id IN (SELECT run_id FROM v) GROUP BY run_id, key)  -- the latest point, as metric_latest
    GROUP BY run_id
), i AS (
    SELECT DISTINCT run_id, role, kind, name, table_identifier, snapshot_id, schema_id, uri, digest, catalog
    FROM lakeml.inputs WHERE run_id IN (SELECT run_id FROM v)
)
SELECT v.model_name,
       v.version,
       'models:/' || v.model_name || '/' || v.version AS model_uri,
       a.aliases,
       dep.deployed_now,
       dep.ever_deployed_to,
       dep.ever_deployed_to IS NOT NULL AS ever_deployed,
       v.flavor,
       v.created_at AS registered_at,
       v.created_by AS registered_by,
       v.run_id,
       r.run_name,
       r.experiment_name,
       r.status AS run_status,
       r.user AS run_user,
       r.git_commit,
       r.source AS code_source,
       p.params,
       mt.metrics,
       i.role AS input_role,
       i.kind AS input_kind,
       i.name AS input_name,
       i.table_identifier AS input_table,
       i.snapshot_id AS input_snapshot_id,
       i.schema_id AS input_schema_id,
       i.uri AS input_uri,
       i.digest AS input_digest,
       i.catalog AS input_catalog
FROM v
LEFT JOIN a ON a.model_name = v.model_name AND a.version = v.version
LEFT JOIN dep ON dep.model_name = v.model_name AND dep.version = v.version
LEFT JOIN r ON r.run_id = v.run_id
LEFT JOIN p ON p.run_id = v.run_id
LEFT JOIN mt ON mt.run_id = v.run_id
LEFT JOIN i ON i.run_id = v.run_id;
