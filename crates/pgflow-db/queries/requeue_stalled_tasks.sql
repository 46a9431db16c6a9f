-- Requeues tasks whose worker died (SPEC §3.6); returns how many.
SELECT pgflow.requeue_stalled_tasks() AS requeued
