-- Cancels a started run (pgflow-rs extension); true when this call cancelled it.
SELECT pgflow.cancel_run(run_id => $1) AS cancelled
