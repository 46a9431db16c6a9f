-- Reads up to $3 visible messages of a flow's queue (hiding them for $2 seconds) and claims
-- their tasks for worker $4, in one statement: one round-trip and one commit instead of a
-- pgmq read followed by start_tasks. If start_tasks fails, the read rolls back with it.
SELECT flow_slug, run_id, step_slug, input, msg_id, task_index, flow_input
FROM pgflow.start_tasks(
  flow_slug => $1,
  msg_ids => ARRAY(SELECT m.msg_id FROM pgmq.read(queue_name => $1, vt => $2, qty => $3) m),
  worker_id => $4)
