-- Long-polls a flow's queue (pgmq reads use FOR UPDATE SKIP LOCKED) through pgflow's
-- SECURITY DEFINER wrapper, so a worker role needs no access to pgmq's tables.
SELECT msg_id, read_ct, message
FROM pgflow.read_with_poll(
  queue_name => $1, vt => $2, qty => $3,
  max_poll_seconds => $4, poll_interval_ms => $5)
