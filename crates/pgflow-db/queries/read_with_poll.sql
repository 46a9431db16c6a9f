-- Long-polls a flow's queue (pgmq reads use FOR UPDATE SKIP LOCKED).
SELECT msg_id, read_ct, message
FROM pgmq.read_with_poll(
  queue_name => $1, vt => $2, qty => $3,
  max_poll_seconds => $4, poll_interval_ms => $5)
