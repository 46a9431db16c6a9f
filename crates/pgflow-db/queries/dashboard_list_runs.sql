-- The dashboard's run list: newest first, filtered, keyset-paginated. Every filter is a bound
-- parameter (NULL = no filter). $1 flow slug, $2 status, $3 started at or after, $4 started
-- before, $5/$6 the (started_at, run_id) of the previous page's last row (NULL for the first
-- page), $7 page size. Served by idx_runs_started_at; steps done/total per run come from its
-- few step_states rows, never from its tasks.
SELECT r.run_id,
       r.flow_slug,
       r.status,
       r.started_at,
       coalesce(r.completed_at, r.failed_at, r.cancelled_at) AS finished_at,
       extract(epoch FROM coalesce(r.completed_at, r.failed_at, r.cancelled_at, now())
                          - r.started_at)::float8 AS duration_secs,
       s.steps_done,
       s.steps_total
FROM pgflow.runs r
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE ss.status IN ('completed', 'skipped'))::int AS steps_done,
         count(*)::int AS steps_total
    FROM pgflow.step_states ss
   WHERE ss.run_id = r.run_id
) s
WHERE ($1::text IS NULL OR r.flow_slug = $1)
  AND ($2::text IS NULL OR r.status = $2)
  AND ($3::timestamptz IS NULL OR r.started_at >= $3)
  AND ($4::timestamptz IS NULL OR r.started_at < $4)
  AND ($5::timestamptz IS NULL OR (r.started_at, r.run_id) < ($5::timestamptz, $6::uuid))
ORDER BY r.started_at DESC, r.run_id DESC
LIMIT $7
