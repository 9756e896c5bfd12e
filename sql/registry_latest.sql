-- The current state of each registry projection: the latest event per key (by event_seq).
-- registry_current, deployments_current and model_lineage are built on these.

-- One row per registered model.
CREATE OR REPLACE VIEW lakeml.registered_models_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY name ORDER BY event_seq DESC) AS rn
    FROM lakeml.registered_models)
WHERE rn = 1;

-- One row per model version.
CREATE OR REPLACE VIEW lakeml.model_versions_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY model_name, version ORDER BY event_seq DESC) AS rn
    FROM lakeml.model_versions)
WHERE rn = 1;

-- One row per alias that points at a version now (deleted aliases left out).
CREATE OR REPLACE VIEW lakeml.model_aliases_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY model_name, alias ORDER BY event_seq DESC) AS rn
    FROM lakeml.model_aliases)
WHERE rn = 1 AND version IS NOT NULL;

-- One row per deployment, live or retired (retired_at set).
CREATE OR REPLACE VIEW lakeml.deployments_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY deployment_id ORDER BY event_seq DESC) AS rn
    FROM lakeml.deployments)
WHERE rn = 1;
