-- The input of a run, loaded lazily by handlers that need it.
SELECT input FROM pgflow.runs WHERE run_id = $1
