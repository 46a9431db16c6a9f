-- replaceable
-- pgflow.complete_task: records a task's output and cascades. Idempotent and race-free:
-- the run row is locked first (the serialization point of every run transition), then the
-- step state, then the task; only a started task completes, so the first report wins and a
-- late or duplicate call changes nothing (a late call for a step that is no longer started
-- just archives its message). When the step's last task completes, the step stores its
-- output (the task output, or all task outputs in task_index order for a map), children are
-- released, and the run advances (conditions, taskless steps, ready steps, completion).
-- A single step feeding a map that does not produce an array fails the run (type violation).
-- Returns the task row; no row for an unknown task.
create or replace function pgflow.complete_task(run_id uuid, step_slug text, task_index int, output jsonb)
returns setof pgflow.step_tasks
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
  v_state pgflow.step_states;
  v_step pgflow.steps;
  v_task pgflow.step_tasks;
  v_violating_child text;
begin
  select * into v_run from pgflow.runs r where r.run_id = complete_task.run_id for update;
  if v_run.run_id is null then
    return;
  end if;

  select * into v_task from pgflow.step_tasks t
   where t.run_id = complete_task.run_id and t.step_slug = complete_task.step_slug
     and t.task_index = complete_task.task_index;
  if v_task.run_id is null then
    return;
  end if;

  -- A failed or cancelled run records nothing more; its messages were archived with it.
  if v_run.status in ('failed', 'cancelled') then
    return next v_task;
    return;
  end if;

  select * into v_state from pgflow.step_states ss
   where ss.run_id = complete_task.run_id and ss.step_slug = complete_task.step_slug
     for update;
  select * into v_task from pgflow.step_tasks t
   where t.run_id = complete_task.run_id and t.step_slug = complete_task.step_slug
     and t.task_index = complete_task.task_index
     for update;

  if v_state.status <> 'started' then
    perform pgflow._archive_task_message(complete_task.run_id, complete_task.step_slug, complete_task.task_index);
    return next v_task;
    return;
  end if;

  if v_task.status <> 'started' then
    return next v_task;
    return;
  end if;

  -- An oversized output is a failed attempt, not an error: the worker's report is accepted
  -- and the task retries (or fails) by the usual rules.
  if pgflow._payload_too_large('task output', output) is not null then
    return query select * from pgflow.fail_task(complete_task.run_id, complete_task.step_slug,
      complete_task.task_index, pgflow._payload_too_large('task output', output));
    return;
  end if;

  select * into v_step from pgflow.steps s
   where s.flow_slug = v_run.flow_slug and s.step_slug = complete_task.step_slug;

  -- Type violation: a single step whose map child waits for an array got something else.
  if v_step.step_type = 'single' and (output is null or jsonb_typeof(output) <> 'array') then
    select d.step_slug into v_violating_child
      from pgflow.deps d
      join pgflow.steps cs on cs.flow_slug = d.flow_slug and cs.step_slug = d.step_slug
      join pgflow.step_states css on css.run_id = complete_task.run_id and css.step_slug = d.step_slug
     where d.flow_slug = v_run.flow_slug and d.dep_slug = complete_task.step_slug
       and cs.step_type = 'map' and css.initial_tasks is null
     order by d.step_slug
     limit 1;
    if v_violating_child is not null then
      update pgflow.step_tasks t
         set status = 'failed', failed_at = greatest(now(), t.started_at), output = complete_task.output,
             error_message = format('[TYPE_VIOLATION] Produced %s instead of array',
                                    coalesce(jsonb_typeof(complete_task.output), 'null'))
       where t.run_id = complete_task.run_id and t.step_slug = complete_task.step_slug
         and t.task_index = complete_task.task_index
      returning * into v_task;
      update pgflow.step_states ss
         set status = 'failed', failed_at = greatest(now(), ss.started_at),
             error_message = format('[TYPE_VIOLATION] Map step %s expects array input but dependency %s produced %s',
                                    v_violating_child, complete_task.step_slug,
                                    coalesce(jsonb_typeof(complete_task.output), 'null'))
       where ss.run_id = complete_task.run_id and ss.step_slug = complete_task.step_slug
      returning * into v_state;
      perform pgflow._archive_task_message(complete_task.run_id, complete_task.step_slug, complete_task.task_index);
      perform pgflow.emit_event('step:' || complete_task.step_slug || ':failed', jsonb_build_object(
        'event_type', 'step:failed',
        'run_id', complete_task.run_id,
        'step_slug', complete_task.step_slug,
        'status', 'failed',
        'error_message', v_state.error_message,
        'failed_at', v_state.failed_at));
      perform pgflow._fail_run(complete_task.run_id, null);
      return next v_task;
      return;
    end if;
  end if;

  update pgflow.step_tasks t
     set status = 'completed', completed_at = greatest(now(), t.started_at), output = complete_task.output
   where t.run_id = complete_task.run_id and t.step_slug = complete_task.step_slug
     and t.task_index = complete_task.task_index
  returning * into v_task;

  update pgflow.step_states ss
     set remaining_tasks = ss.remaining_tasks - 1
   where ss.run_id = complete_task.run_id and ss.step_slug = complete_task.step_slug
  returning * into v_state;

  perform pgflow._archive_task_message(complete_task.run_id, complete_task.step_slug, complete_task.task_index);

  if v_state.remaining_tasks = 0 then
    perform pgflow._complete_step(complete_task.run_id, complete_task.step_slug);
  end if;

  return next v_task;
end;
$$;
