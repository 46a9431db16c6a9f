-- Resumes a failed run from where it failed (pgflow-rs extension); true when resumed.
SELECT pgflow.retry_run(run_id => $1) AS resumed
