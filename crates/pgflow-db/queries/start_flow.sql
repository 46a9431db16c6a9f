-- Starts a run of a flow; returns the new runs row (pgflow.start_flow, SPEC §3.2).
SELECT run_id, flow_slug, status, input, output, remaining_steps
FROM pgflow.start_flow(flow_slug => $1, input => $2, run_id => $3)
