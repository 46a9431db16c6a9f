-- Cancels a run (pgflow-rs extension; terminal status 'cancelled').
SELECT FROM pgflow.cancel_run($1)
