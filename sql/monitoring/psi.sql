-- Population stability index per numeric feature: 10 bins cut at the training deciles
-- (bin = number of cut points <= x, i.e. numpy.searchsorted(cuts, x, side="right")), shares floored at 1e-4:
-- PSI = sum over bins of (current - reference) * ln(current / reference).
-- reference_cuts and reference_bins (reference.sql) hold the training side.
WITH cur AS (
    SELECT r.feature, len(list_filter(c.q, v -> v <= r.x)) AS bin, count(*) AS k
    FROM current_num AS r JOIN reference_cuts AS c USING (feature) WHERE r.x IS NOT NULL GROUP BY ALL
),
shares AS (
    SELECT b.feature, b.bin, b.p AS p_ref,
           greatest(coalesce(cur.k, 0) / sum(coalesce(cur.k, 0)) OVER (PARTITION BY b.feature), 1e-4) AS p_cur,
           sum(coalesce(cur.k, 0)) OVER (PARTITION BY b.feature) AS n
    FROM reference_bins AS b LEFT JOIN cur USING (feature, bin)
)
SELECT 'psi' AS check_name, feature, sum((p_cur - p_ref) * ln(p_cur / p_ref)) AS value, any_value(n) AS n
FROM shares WHERE n > 0 GROUP BY feature ORDER BY feature;
