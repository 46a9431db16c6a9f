-- replaceable
-- pgflow.task_attempt (pgflow-rs extension): the attempt number (attempts_count, from 1) of a
-- task, for handlers that want it; NULL for an unknown task. Workers call it (SECURITY
-- DEFINER, see pgflow.setup_roles).
create or replace function pgflow.task_attempt(run_id uuid, step_slug text, task_index int)
returns int
language sql
stable
set search_path = ''
as $$
  select t.attempts_count from pgflow.step_tasks t
   where t.run_id = task_attempt.run_id and t.step_slug = task_attempt.step_slug
     and t.task_index = task_attempt.task_index
$$;
