-- Seconds from the first of the given runs' start to the last one's completion (DB clock).
SELECT extract(epoch FROM max(completed_at) - min(started_at))::float8 AS secs
FROM pgflow.runs
WHERE run_id = ANY($1)
