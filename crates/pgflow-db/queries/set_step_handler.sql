-- Stores, replaces or (NULL spec) removes a step's built-in handler spec.
SELECT pgflow.set_step_handler(flow_slug => $1, step_slug => $2, spec => $3) AS result
