-- Two-sample Kolmogorov-Smirnov statistic per numeric feature: the largest distance between the
-- empirical CDFs of the training values and the window's values (scipy.stats.ks_2samp(...).statistic).
WITH pooled AS (
    SELECT feature, x, 1 AS in_ref, 0 AS in_cur FROM reference_num WHERE x IS NOT NULL
    UNION ALL
    SELECT feature, x, 0, 1 FROM current_num
    WHERE x IS NOT NULL AND feature IN (SELECT feature FROM reference_num WHERE x IS NOT NULL)
),
steps AS (
    SELECT feature, x, sum(in_ref) AS k_ref, sum(in_cur) AS k_cur FROM pooled GROUP BY feature, x
),
cdf AS (
    SELECT feature,
           sum(k_ref) OVER w / sum(k_ref) OVER (PARTITION BY feature) AS f_ref,
           sum(k_cur) OVER w / sum(k_cur) OVER (PARTITION BY feature) AS f_cur,
           sum(k_cur) OVER (PARTITION BY feature) AS n
    FROM steps
    WINDOW w AS (PARTITION BY feature ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT 'ks' AS check_name, feature, max(abs(f_ref - f_cur)) AS value, any_value(n) AS n
FROM cdf WHERE n > 0 GROUP BY feature HAVING count(f_ref) > 0 ORDER BY feature;
