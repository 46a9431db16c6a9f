-- Records one metered call of a started task's current attempt; NULL when not started.
SELECT pgflow.record_task_usage(run_id => $1, step_slug => $2, task_index => $3, model => $4,
                                input_tokens => $5, output_tokens => $6, latency_ms => $7) AS usage_id
