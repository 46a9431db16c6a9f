-- Metered usage per step of a run (pgflow.step_usage), in step order.
SELECT u.step_slug, u.calls, u.abandoned_calls, u.input_tokens, u.output_tokens,
       u.cost_usd::float8 AS cost_usd, u.latency_ms, u.models
FROM pgflow.step_usage u
JOIN pgflow.runs r ON r.run_id = u.run_id
JOIN pgflow.steps s ON s.flow_slug = r.flow_slug AND s.step_slug = u.step_slug
WHERE u.run_id = $1
ORDER BY s.step_index
