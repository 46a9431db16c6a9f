-- Registers a worker; must precede any start_tasks naming it (SPEC §2.6, §5).
INSERT INTO pgflow.workers (queue_name, worker_id, function_name)
VALUES ($1, $2, $3)
