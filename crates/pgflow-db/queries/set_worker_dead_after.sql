-- pgflow.set_worker_dead_after: this worker's grace before the sweep presumes it dead.
SELECT pgflow.set_worker_dead_after($1, make_interval(secs => $2))
