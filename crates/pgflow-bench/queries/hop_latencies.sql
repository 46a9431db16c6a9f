-- Hand-off latency of every edge of the given runs, in milliseconds: from the parent step's
-- completion (step_states.completed_at) to the start of the child's task
-- (step_tasks.started_at). Both are transaction start times (now()), so a hop covers the
-- completing transaction and its commit, the notification, the wake-up and the read.
SELECT (extract(epoch FROM t.started_at - p.completed_at) * 1000)::float8 AS ms
FROM pgflow.runs r
JOIN pgflow.deps d ON d.flow_slug = r.flow_slug
JOIN pgflow.step_states p ON p.run_id = r.run_id AND p.step_slug = d.dep_slug
JOIN pgflow.step_tasks t ON t.run_id = r.run_id AND t.step_slug = d.step_slug
WHERE r.run_id = ANY($1) AND p.completed_at IS NOT NULL AND t.started_at IS NOT NULL
