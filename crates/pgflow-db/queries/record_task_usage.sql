-- Records one metered call of the current attempt of a task started by this worker; NULL when
-- the task is not (or no longer) this worker's.
SELECT pgflow.record_task_usage(run_id => $1, step_slug => $2, task_index => $3, worker_id => $4,
                                model => $5, input_tokens => $6, output_tokens => $7,
                                latency_ms => $8) AS usage_id
