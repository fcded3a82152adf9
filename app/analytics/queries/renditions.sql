-- Rendition mix: watch minutes per rendition and their share of all watch minutes.
WITH ev AS (
    SELECT * FROM viewing_events
    WHERE dt BETWEEN ? AND ? AND substr(ts, 1, 10) BETWEEN ? AND ?
),
per_rendition AS (
    SELECT coalesce(rendition, 'unknown') AS rendition, sum(coalesce(watched_s, 0)) AS watched_s
    FROM ev
    WHERE type IN ('heartbeat', 'stop')
    GROUP BY coalesce(rendition, 'unknown')
)
SELECT
    rendition,
    CAST(round(watched_s / 60.0, 2) AS DOUBLE) AS watch_minutes,
    CAST(round(watched_s / nullif(sum(watched_s) OVER (), 0), 4) AS DOUBLE) AS share
FROM per_rendition
WHERE watched_s > 0
ORDER BY watch_minutes DESC, rendition
