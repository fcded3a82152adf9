-- The range in one row: plays, watch minutes, viewers, startup p50/p95, rebuffering ratio.
WITH ev AS (
    SELECT * FROM viewing_events
    WHERE dt BETWEEN ? AND ? AND substr(ts, 1, 10) BETWEEN ? AND ?
),
starts AS (
    SELECT
        startup_ms,
        row_number() OVER (ORDER BY startup_ms) AS rn,
        count(*) OVER () AS n
    FROM ev
    WHERE type = 'start' AND startup_ms IS NOT NULL
)
SELECT
    CAST((SELECT count(*) FROM ev WHERE type = 'start') AS BIGINT) AS plays,
    CAST(coalesce((SELECT round(sum(coalesce(watched_s, 0)) / 60.0, 2) FROM ev WHERE type IN ('heartbeat', 'stop')), 0) AS DOUBLE) AS watch_minutes,
    CAST((SELECT count(DISTINCT user_pid) FROM ev WHERE type = 'start') AS BIGINT) AS viewers,
    CAST((SELECT min(CASE WHEN rn >= ceil(0.50 * n) THEN startup_ms END) FROM starts) AS BIGINT) AS startup_p50_ms,
    CAST((SELECT min(CASE WHEN rn >= ceil(0.95 * n) THEN startup_ms END) FROM starts) AS BIGINT) AS startup_p95_ms,
    CAST(coalesce((SELECT round(sum(coalesce(stall_ms, 0)) / 1000.0 / nullif(sum(coalesce(watched_s, 0)) + sum(coalesce(stall_ms, 0)) / 1000.0, 0), 4) FROM ev WHERE type IN ('heartbeat', 'stop')), 0) AS DOUBLE) AS rebuffering_ratio,
    CAST((SELECT count(*) FROM ev WHERE type = 'refusal') AS BIGINT) AS refusals,
    CAST((SELECT count(*) FROM ev WHERE type = 'error') AS BIGINT) AS errors
