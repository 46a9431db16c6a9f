-- The runs row, read directly: cheap status polling for clients.
SELECT run_id, flow_slug, status, input, output, remaining_steps
FROM pgflow.runs
WHERE run_id = $1
