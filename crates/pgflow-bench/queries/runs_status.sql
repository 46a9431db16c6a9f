-- How many of the given runs completed, and how many ended otherwise.
SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status IN ('failed', 'cancelled')) AS failed
FROM pgflow.runs
WHERE run_id = ANY($1)
