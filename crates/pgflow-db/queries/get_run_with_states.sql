-- {"run": <runs row>, "steps": [<step_states rows>]}, NULL for an unknown run (SPEC §3.2).
SELECT pgflow.get_run_with_states(run_id => $1) AS result
