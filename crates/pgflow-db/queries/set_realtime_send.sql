-- Turns the realtime.send broadcast on or off; see sql/0130_set_realtime_send.sql.
SELECT pgflow.set_realtime_send(enabled => $1)
