-- Free -> premium conversion: viewers who saw the upsell page on the free plan,
-- and how many of them were granted a premium video afterwards.
WITH ev AS (
    SELECT * FROM viewing_events
    WHERE dt BETWEEN ? AND ? AND substr(ts, 1, 10) BETWEEN ? AND ?
),
upsold AS (
    SELECT user_pid, min(ts) AS first_seen, count(*) AS views
    FROM ev
    WHERE type = 'upsell_view' AND plan = 'free'
    GROUP BY user_pid
),
converted AS (
    SELECT DISTINCT u.user_pid
    FROM upsold u
    JOIN ev g ON g.user_pid = u.user_pid
    WHERE g.type = 'grant' AND g.plan = 'premium' AND g.ts > u.first_seen
)
SELECT
    CAST(coalesce((SELECT sum(views) FROM upsold), 0) AS BIGINT) AS upsell_views,
    CAST((SELECT count(*) FROM upsold) AS BIGINT) AS upsell_viewers,
    CAST((SELECT count(*) FROM converted) AS BIGINT) AS converted,
    CAST(coalesce(round(CAST((SELECT count(*) FROM converted) AS DOUBLE) / nullif((SELECT count(*) FROM upsold), 0), 4), 0) AS DOUBLE) AS conversion_rate
