-- The most watched videos: watch minutes, plays and distinct viewers.
WITH ev AS (
    SELECT * FROM viewing_events
    WHERE dt BETWEEN ? AND ? AND substr(ts, 1, 10) BETWEEN ? AND ?
)
SELECT
    video_id,
    CAST(sum(CASE WHEN type = 'start' THEN 1 ELSE 0 END) AS BIGINT) AS plays,
    CAST(round(sum(CASE WHEN type IN ('heartbeat', 'stop') THEN coalesce(watched_s, 0) ELSE 0 END) / 60.0, 2) AS DOUBLE) AS watch_minutes,
    CAST(count(DISTINCT CASE WHEN type = 'start' THEN user_pid END) AS BIGINT) AS viewers
FROM ev
WHERE video_id IS NOT NULL AND type IN ('start', 'heartbeat', 'stop')
GROUP BY video_id
ORDER BY watch_minutes DESC, plays DESC, video_id
LIMIT 10
