-- Most recent runs first, optionally of one flow and/or one status, for `pgflow run list`.
-- $1 flow slug or NULL, $2 status or NULL, $3 limit.
SELECT p.run_id,
       p.flow_slug,
       p.status,
       p.steps_done,
       p.steps_total,
       p.tasks_done,
       p.tasks_total,
       p.started_at,
       extract(epoch FROM p.duration)::float8 AS duration_secs
FROM pgflow.run_progress p
WHERE ($1::text IS NULL OR p.flow_slug = $1)
  AND ($2::text IS NULL OR p.status = $2)
ORDER BY p.started_at DESC, p.run_id
LIMIT $3
