-- replaceable
-- pgflow.fail_task: records a failed attempt. Under the run-row lock: a task with attempts
-- left goes back to queued and its message becomes visible again after the backoff delay
-- (calculate_retry_delay of the step's or flow's base delay). A task out of attempts fails;
-- then by the step's when_exhausted: 'fail' fails the step and the run (archiving the run's
-- messages); 'skip' skips the step and releases its children as if it had resolved;
-- 'skip-cascade' skips it and everything downstream. Idempotent: only a started task is
-- affected, so a replayed or late call (queued, completed or failed task, or a step that is
-- no longer started) changes nothing but archiving a stray message. Returns the task row.
-- An error message longer than pgflow.config.max_error_chars (default 65536) is cut to it,
-- marked with its full length, so a worker cannot store an unbounded text per attempt.
-- SECURITY DEFINER: the worker role calls it without write access to the tables.
create or replace function pgflow.fail_task(run_id uuid, step_slug text, task_index int, error_message text)
returns setof pgflow.step_tasks
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_run pgflow.runs;
  v_state pgflow.step_states;
  v_step pgflow.steps;
  v_flow pgflow.flows;
  v_task pgflow.step_tasks;
  v_max_chars int := coalesce((select c.max_error_chars from pgflow.config c), 65536);
begin
  if length(fail_task.error_message) > v_max_chars then
    fail_task.error_message := left(fail_task.error_message, v_max_chars)
      || format(' [truncated: %s characters in all]', length(fail_task.error_message));
  end if;

  select * into v_run from pgflow.runs r where r.run_id = fail_task.run_id for update;
  if v_run.run_id is null then
    return;
  end if;

  select * into v_state from pgflow.step_states ss
   where ss.run_id = fail_task.run_id and ss.step_slug = fail_task.step_slug
     for update;
  select * into v_task from pgflow.step_tasks t
   where t.run_id = fail_task.run_id and t.step_slug = fail_task.step_slug
     and t.task_index = fail_task.task_index
     for update;
  if v_task.run_id is null then
    return;
  end if;

  -- The run already failed: record this attempt's error on a still-started task, nothing more.
  if v_run.status = 'failed' then
    if v_task.status = 'started' then
      update pgflow.step_tasks t
         set status = 'failed', failed_at = greatest(now(), t.started_at), error_message = fail_task.error_message
       where t.run_id = fail_task.run_id and t.step_slug = fail_task.step_slug
         and t.task_index = fail_task.task_index
      returning * into v_task;
    end if;
    perform pgflow._archive_task_message(fail_task.run_id, fail_task.step_slug, fail_task.task_index);
    return next v_task;
    return;
  end if;

  if v_run.status <> 'started' or v_state.status <> 'started' then
    perform pgflow._archive_task_message(fail_task.run_id, fail_task.step_slug, fail_task.task_index);
    return next v_task;
    return;
  end if;

  if v_task.status <> 'started' then
    return next v_task;
    return;
  end if;

  select * into v_step from pgflow.steps s where s.flow_slug = v_run.flow_slug and s.step_slug = fail_task.step_slug;
  select * into v_flow from pgflow.flows f where f.flow_slug = v_run.flow_slug;

  if v_task.attempts_count < coalesce(v_step.opt_max_attempts, v_flow.opt_max_attempts) then
    update pgflow.step_tasks t
       set status = 'queued', started_at = null, error_message = fail_task.error_message
     where t.run_id = fail_task.run_id and t.step_slug = fail_task.step_slug
       and t.task_index = fail_task.task_index
    returning * into v_task;
    if v_task.message_id is not null then
      perform pgmq.set_vt(v_run.flow_slug, v_task.message_id,
        pgflow.calculate_retry_delay(coalesce(v_step.opt_base_delay, v_flow.opt_base_delay), v_task.attempts_count));
    end if;
    return next v_task;
    return;
  end if;

  update pgflow.step_tasks t
     set status = 'failed', failed_at = greatest(now(), t.started_at), error_message = fail_task.error_message
   where t.run_id = fail_task.run_id and t.step_slug = fail_task.step_slug
     and t.task_index = fail_task.task_index
  returning * into v_task;
  perform pgflow._archive_task_message(fail_task.run_id, fail_task.step_slug, fail_task.task_index);

  if v_step.when_exhausted = 'fail' then
    update pgflow.step_states ss
       set status = 'failed', failed_at = greatest(now(), ss.started_at), error_message = fail_task.error_message
     where ss.run_id = fail_task.run_id and ss.step_slug = fail_task.step_slug;
    perform pgflow.emit_event('step:' || fail_task.step_slug || ':failed', jsonb_build_object(
      'event_type', 'step:failed',
      'run_id', fail_task.run_id,
      'step_slug', fail_task.step_slug,
      'status', 'failed',
      'error_message', fail_task.error_message,
      'failed_at', now()));
    perform pgflow._fail_run(fail_task.run_id, fail_task.error_message);
    return next v_task;
    return;
  end if;

  -- when_exhausted is skip or skip-cascade: the step is skipped, the run goes on.
  update pgflow.step_states ss
     set status = 'skipped', skip_reason = 'handler_failed', skipped_at = greatest(now(), ss.started_at),
         error_message = fail_task.error_message, remaining_tasks = null
   where ss.run_id = fail_task.run_id and ss.step_slug = fail_task.step_slug;
  update pgflow.runs r set remaining_steps = r.remaining_steps - 1 where r.run_id = fail_task.run_id;
  perform pgflow._archive_messages(fail_task.run_id, fail_task.step_slug);
  perform pgflow.emit_event('step:' || fail_task.step_slug || ':skipped', jsonb_build_object(
    'event_type', 'step:skipped',
    'run_id', fail_task.run_id,
    'step_slug', fail_task.step_slug,
    'status', 'skipped',
    'skip_reason', 'handler_failed',
    'error_message', fail_task.error_message,
    'skipped_at', now()));

  if v_step.when_exhausted = 'skip-cascade' then
    perform pgflow._cascade_force_skip_steps(fail_task.run_id, fail_task.step_slug, 'handler_failed');
    perform pgflow.maybe_complete_run(fail_task.run_id);
  else
    perform pgflow._release_children(fail_task.run_id, array[fail_task.step_slug]);
    perform pgflow._advance_run(fail_task.run_id);
  end if;

  return next v_task;
end;
$$;
