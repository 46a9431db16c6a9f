-- One run with its timestamps and the time it took (so far), for `pgflow run show/watch`;
-- no row for an unknown run.
SELECT r.run_id,
       r.flow_slug,
       r.status,
       r.input,
       r.output,
       r.remaining_steps,
       r.started_at,
       coalesce(r.completed_at, r.failed_at, r.cancelled_at) AS finished_at,
       extract(epoch FROM coalesce(r.completed_at, r.failed_at, r.cancelled_at, now()) - r.started_at)::float8
         AS duration_secs
FROM pgflow.runs r
WHERE r.run_id = $1
