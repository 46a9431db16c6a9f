-- Hides a queued message for $3 seconds from now (a postponed retry).
SELECT 1 FROM pgmq.set_vt($1, $2, $3)
