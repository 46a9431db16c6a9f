-- Type pgflow.worker_task_record (pgflow-rs extension): what claim_tasks and
-- start_worker_tasks hand a worker for each task they started: the fields of upstream's
-- pgflow.step_task_record, then the task's attempt number and the step's effective settings
-- (the step's option, else the flow's) read from the database as the task starts. Workers
-- take the handler timeout and the retry delay from here, not from their own definition,
-- so an UPDATE of pgflow.steps / pgflow.flows options applies without restarting them.
create type pgflow.worker_task_record as (
  flow_slug      text,
  run_id         uuid,
  step_slug      text,
  input          jsonb,
  msg_id         bigint,
  task_index     int,
  flow_input     jsonb,
  attempts_count int,  -- this attempt's number, from 1
  max_attempts   int,  -- coalesce(steps.opt_max_attempts, flows.opt_max_attempts)
  timeout        int,  -- seconds; coalesce(steps.opt_timeout, flows.opt_timeout)
  base_delay     int,  -- seconds; coalesce(steps.opt_base_delay, flows.opt_base_delay)
  retry_delay    int   -- seconds fail_task waits before the next attempt if this one fails
);
