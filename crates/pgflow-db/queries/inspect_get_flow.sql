-- One flow with its options, step count and runs per status; no row for an unknown flow.
SELECT f.flow_slug,
       f.opt_max_attempts,
       f.opt_base_delay,
       f.opt_timeout,
       f.created_at,
       (SELECT count(*) FROM pgflow.steps s WHERE s.flow_slug = f.flow_slug)::int AS step_count,
       count(r.run_id) FILTER (WHERE r.status = 'started')::int AS runs_started,
       count(r.run_id) FILTER (WHERE r.status = 'completed')::int AS runs_completed,
       count(r.run_id) FILTER (WHERE r.status = 'failed')::int AS runs_failed,
       count(r.run_id) FILTER (WHERE r.status = 'cancelled')::int AS runs_cancelled
FROM pgflow.flows f
LEFT JOIN pgflow.runs r ON r.flow_slug = f.flow_slug
WHERE f.flow_slug = $1
GROUP BY f.flow_slug
