-- Fleet sweeper: only the one session holding the transaction-level advisory
-- lock runs requeue_stalled_tasks; the others get NULL. One statement is one
-- transaction, so the lock is released as soon as the statement ends.
SELECT CASE
         WHEN pg_try_advisory_xact_lock($1) THEN pgflow.requeue_stalled_tasks()
       END AS requeued
