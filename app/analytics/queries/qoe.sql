-- Quality of experience per day: startup time p50/p95 (nearest rank) and the
-- rebuffering ratio (stalled time / (watched + stalled time)).
WITH ev AS (
    SELECT * FROM viewing_events
    WHERE dt BETWEEN ? AND ? AND substr(ts, 1, 10) BETWEEN ? AND ?
),
starts AS (
    SELECT
        substr(ts, 1, 10) AS day,
        startup_ms,
        row_number() OVER (PARTITION BY substr(ts, 1, 10) ORDER BY startup_ms) AS rn,
        count(*) OVER (PARTITION BY substr(ts, 1, 10)) AS n
    FROM ev
    WHERE type = 'start' AND startup_ms IS NOT NULL
),
startup AS (
    SELECT
        day,
        CAST(max(n) AS BIGINT) AS starts,
        CAST(min(CASE WHEN rn >= ceil(0.50 * n) THEN startup_ms END) AS BIGINT) AS startup_p50_ms,
        CAST(min(CASE WHEN rn >= ceil(0.95 * n) THEN startup_ms END) AS BIGINT) AS startup_p95_ms
    FROM starts
    GROUP BY day
),
stalls AS (
    SELECT
        substr(ts, 1, 10) AS day,
        sum(coalesce(watched_s, 0)) AS watched_s,
        sum(coalesce(stall_ms, 0)) / 1000.0 AS stalled_s
    FROM ev
    WHERE type IN ('heartbeat', 'stop')
    GROUP BY substr(ts, 1, 10)
)
SELECT
    coalesce(s.day, t.day) AS day,
    CAST(coalesce(s.starts, 0) AS BIGINT) AS starts,
    s.startup_p50_ms,
    s.startup_p95_ms,
    CAST(round(coalesce(t.stalled_s / nullif(t.watched_s + t.stalled_s, 0), 0), 4) AS DOUBLE) AS rebuffering_ratio
FROM startup s
FULL OUTER JOIN stalls t ON s.day = t.day
ORDER BY day
