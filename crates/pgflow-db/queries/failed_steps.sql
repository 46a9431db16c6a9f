-- Failed steps of a run with their error messages, for client error reports.
SELECT step_slug, error_message
FROM pgflow.step_states
WHERE run_id = $1 AND status = 'failed'
ORDER BY step_slug
