-- Each completed run's duration in milliseconds, start to completion (DB clock).
SELECT (extract(epoch FROM completed_at - started_at) * 1000)::float8 AS ms
FROM pgflow.runs
WHERE run_id = ANY($1) AND completed_at IS NOT NULL
