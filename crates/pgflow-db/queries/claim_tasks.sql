-- Reads up to $4 visible messages of a flow's queue (hiding them for $5 seconds) and claims
-- their tasks for worker $2, in one statement, stamping them with claim id $3. Idempotent per
-- claim id: run again with the same $3 after a lost reply, it reads nothing new and returns
-- the tasks that claim started. Each with its attempt number and its step's settings.
SELECT flow_slug, run_id, step_slug, coalesce(input, 'null'::jsonb) AS input, msg_id, task_index, flow_input,
       attempts_count, max_attempts, timeout AS timeout_secs, base_delay AS base_delay_secs,
       retry_delay AS retry_delay_secs
FROM pgflow.claim_tasks(flow_slug => $1, worker_id => $2, claim_id => $3, qty => $4, vt => $5)
