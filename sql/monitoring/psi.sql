-- Population stability index per numeric feature: 10 bins cut at the training deciles
-- (bin = number of cut points <= x, i.e. numpy.searchsorted(cuts, x, side="right")), shares floored at 1e-4:
-- PSI = sum over bins of (current - reference) * ln(current / reference).
WITH cuts AS (
    SELECT feature, quantile_cont(x, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) AS q
    FROM reference_num WHERE x IS NOT NULL GROUP BY feature
),
grid AS (SELECT feature, unnest(range(0, 10)) AS bin FROM cuts),
ref AS (
    SELECT r.feature, len(list_filter(c.q, v -> v <= r.x)) AS bin, count(*) AS k
    FROM reference_num AS r JOIN cuts AS c USING (feature) WHERE r.x IS NOT NULL GROUP BY ALL
),
cur AS (
    SELECT r.feature, len(list_filter(c.q, v -> v <= r.x)) AS bin, count(*) AS k
    FROM current_num AS r JOIN cuts AS c USING (feature) WHERE r.x IS NOT NULL GROUP BY ALL
),
shares AS (
    SELECT g.feature, g.bin,
           greatest(coalesce(ref.k, 0) / sum(coalesce(ref.k, 0)) OVER (PARTITION BY g.feature), 1e-4) AS p_ref,
           greatest(coalesce(cur.k, 0) / sum(coalesce(cur.k, 0)) OVER (PARTITION BY g.feature), 1e-4) AS p_cur,
           sum(coalesce(cur.k, 0)) OVER (PARTITION BY g.feature) AS n
    FROM grid AS g
    LEFT JOIN ref USING (feature, bin)
    LEFT JOIN cur USING (feature, bin)
)
SELECT 'psi' AS check_name, feature, sum((p_cur - p_ref) * ln(p_cur / p_ref)) AS value, any_value(n) AS n
FROM shares WHERE n > 0 GROUP BY feature ORDER BY feature;
