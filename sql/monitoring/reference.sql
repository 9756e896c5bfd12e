-- Run once per model version, after reference_num / reference_cat are built from the training snapshot:
-- what the drift checks need of the reference, computed once for every window.
-- reference_cdf: per numeric feature, each distinct training value x and the share of values <= x.
CREATE OR REPLACE TEMP TABLE reference_cdf AS
SELECT feature, x,
       sum(k) OVER (PARTITION BY feature ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
       / sum(k) OVER (PARTITION BY feature) AS f
FROM (SELECT feature, x, count(*) AS k FROM reference_num WHERE x IS NOT NULL GROUP BY feature, x);

-- reference_cuts: the training deciles of each numeric feature (the PSI bin edges).
CREATE OR REPLACE TEMP TABLE reference_cuts AS
SELECT feature, quantile_cont(x, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) AS q
FROM reference_num WHERE x IS NOT NULL GROUP BY feature;

-- reference_bins: the training share of each of the 10 bins (bin = number of cuts <= x), floored at 1e-4.
CREATE OR REPLACE TEMP TABLE reference_bins AS
WITH counts AS (
    SELECT r.feature, len(list_filter(c.q, v -> v <= r.x)) AS bin, count(*) AS k
    FROM reference_num AS r JOIN reference_cuts AS c USING (feature) WHERE r.x IS NOT NULL GROUP BY ALL
)
SELECT c.feature, g.bin, greatest(coalesce(k.k, 0) / sum(coalesce(k.k, 0)) OVER (PARTITION BY c.feature), 1e-4) AS p
FROM reference_cuts AS c
CROSS JOIN (SELECT unnest(range(0, 10)) AS bin) AS g
LEFT JOIN counts AS k ON k.feature = c.feature AND k.bin = g.bin;
