-- Model projects for management: what is in development, what is in production, what is stuck and
-- for how long. projects_latest and tasks_latest are the current rows of the lifecycle projections.

-- One row per model project (its current state).
CREATE OR REPLACE VIEW lakeml.projects_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY project_id ORDER BY event_seq DESC) AS rn
    FROM lakeml.projects)
WHERE rn = 1;

-- One row per task instance (its current state: ready, completed or cancelled).
CREATE OR REPLACE VIEW lakeml.tasks_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY task_instance ORDER BY event_seq DESC) AS rn
    FROM lakeml.tasks)
WHERE rn = 1;

-- One row per project: its status, the step(s) it is in, who holds them, since when, what blocks them,
-- the last activity, the production version of its models and that version's latest monitoring status
-- (ok, alerting, or null when it was never monitored).
CREATE OR REPLACE VIEW lakeml.project_board AS
WITH p AS (
    SELECT * FROM lakeml.projects_latest
), t AS (
    SELECT * FROM lakeml.tasks_latest WHERE state = 'ready'
), cur AS (
    SELECT project_id,
           string_agg(task_name, ', ' ORDER BY ready_at, task_id) AS current_step,
           string_agg(task_id, ', ' ORDER BY ready_at, task_id) AS current_task,
           string_agg(DISTINCT role, ', ') AS role,
           string_agg(coalesce(assignee, 'any ' || role), ', ' ORDER BY ready_at, task_id) AS assignee,
           min(ready_at) AS step_since,
           min(sla_days) AS sla_days,
           string_agg(task_id || ': ' || blocked_by, '; ' ORDER BY task_id) AS blocked_by
    FROM t GROUP BY project_id
), act AS (
    SELECT project_id, max(event_time) AS last_activity, count(*) AS events
    FROM lakeml.project_events GROUP BY project_id
), pm AS (
    SELECT project_id, unnest(models) AS model_name FROM p
), prod_alias AS (
    SELECT model_name, version FROM lakeml.model_aliases_latest WHERE alias = 'production'
), prod_dep AS (
    SELECT model_name, max(version) AS version FROM lakeml.deployments_latest
    WHERE retired_at IS NULL AND environment IN ('prod', 'production') GROUP BY model_name
), prod AS (
    SELECT pm.project_id, pm.model_name, coalesce(a.version, d.version) AS version
    FROM pm LEFT JOIN prod_alias a USING (model_name) LEFT JOIN prod_dep d USING (model_name)
    WHERE coalesce(a.version, d.version) IS NOT NULL
), mon AS (
    SELECT model_name, model_version, max(window_end) AS last_window
    FROM lakeml.monitoring GROUP BY model_name, model_version
), alert AS (
    SELECT model_name, model_version, max(window_end) AS last_alert_window, arg_max(message, fired_at) AS last_alert
    FROM lakeml.alerts GROUP BY model_name, model_version
), prod_status AS (
    SELECT prod.project_id,
           string_agg('models:/' || prod.model_name || '/' || prod.version, ', ' ORDER BY prod.model_name)
               AS production_model_version,
           string_agg(CASE WHEN mon.last_window IS NULL THEN NULL
                           WHEN alert.last_alert_window >= mon.last_window THEN 'alerting: ' || alert.last_alert
                           ELSE 'ok' END, ', ' ORDER BY prod.model_name) AS monitoring_status,
           max(mon.last_window) AS monitored_until
    FROM prod
    LEFT JOIN mon ON mon.model_name = prod.model_name AND mon.model_version = prod.version
    LEFT JOIN alert ON alert.model_name = prod.model_name AND alert.model_version = prod.version
    GROUP BY prod.project_id
)
SELECT p.name AS project,
       p.status,
       p.customer,
       cur.current_step,
       cur.current_task,
       cur.role,
       cur.assignee,
       round(epoch(now() - cur.step_since) / 86400.0, 2) AS days_in_step,
       cur.sla_days,
       coalesce(epoch(now() - cur.step_since) / 86400.0 > cur.sla_days, false) AS stuck,
       cur.blocked_by,
       act.last_activity,
       ps.production_model_version,
       ps.monitoring_status,
       ps.monitored_until,
       round(epoch(p.status_since - p.created_at) / 86400.0, 2) AS days_to_status,
       p.target_date,
       p.expected_value,
       p.problem,
       p.models,
       p.experiments,
       p.roles,
       p.created_at,
       p.created_by,
       p.status_since,
       p.cancel_reason,
       p.project_id
FROM p
LEFT JOIN cur ON cur.project_id = p.project_id
LEFT JOIN act ON act.project_id = p.project_id
LEFT JOIN prod_status ps ON ps.project_id = p.project_id;
