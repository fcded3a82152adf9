-- Completion per video: sessions that played to the end (a stop with reason 'ended')
-- out of sessions that started.
WITH ev AS (
    SELECT * FROM viewing_events
    WHERE dt BETWEEN ? AND ? AND substr(ts, 1, 10) BETWEEN ? AND ?
),
sessions AS (
    SELECT
        video_id,
        session_id,
        max(CASE WHEN type = 'start' THEN 1 ELSE 0 END) AS started,
        max(CASE WHEN type = 'stop' AND reason = 'ended' THEN 1 ELSE 0 END) AS completed
    FROM ev
    WHERE session_id IS NOT NULL AND video_id IS NOT NULL AND type IN ('start', 'stop')
    GROUP BY video_id, session_id
)
SELECT
    video_id,
    CAST(sum(started) AS BIGINT) AS started,
    CAST(sum(CASE WHEN started = 1 THEN completed ELSE 0 END) AS BIGINT) AS completed,
    CAST(round(CAST(sum(CASE WHEN started = 1 THEN completed ELSE 0 END) AS DOUBLE) / sum(started), 4) AS DOUBLE) AS completion_rate
FROM sessions
GROUP BY video_id
HAVING sum(started) > 0
ORDER BY completion_rate DESC, started DESC, video_id
