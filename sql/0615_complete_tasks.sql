-- replaceable
-- pgflow.complete_tasks (pgflow-rs extension): complete_task for many tasks in one call and
-- one transaction, so a worker pays one round-trip and one commit for a whole batch of
-- results. `completions` is a JSON array of {"run_id", "step_slug", "task_index", "output"}.
-- Each element gets exactly complete_task's semantics (idempotent, first report wins).
-- Elements are processed in (run_id, step_slug, task_index) order, so two batches that
-- touch the same runs always take the run-row locks in the same order and cannot deadlock.
-- Returns the task rows, as complete_task does.
create or replace function pgflow.complete_tasks(completions jsonb)
returns setof pgflow.step_tasks
language plpgsql
set search_path = ''
as $$
declare
  v_item record;
begin
  if jsonb_typeof(completions) is distinct from 'array' then
    raise exception 'complete_tasks expects a JSON array of {"run_id", "step_slug", "task_index", "output"}, got %',
      coalesce(jsonb_typeof(completions), 'NULL');
  end if;
  for v_item in
    select (c ->> 'run_id')::uuid as run_id, c ->> 'step_slug' as step_slug,
           (c ->> 'task_index')::int as task_index, c -> 'output' as output
      from jsonb_array_elements(completions) c
     order by 1, 2, 3
  loop
    return query select * from pgflow.complete_task(v_item.run_id, v_item.step_slug, v_item.task_index, v_item.output);
  end loop;
end;
$$;
