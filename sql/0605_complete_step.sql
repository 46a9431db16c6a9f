-- replaceable
-- pgflow._complete_step: finishes a started step whose last task just completed
-- (remaining_tasks = 0): the step becomes completed with its output (the single task's output,
-- or every task output in task_index order for a map, nulls kept), its children are released,
-- remaining_steps drops, step:completed is emitted, and the run advances (conditions, taskless
-- steps, ready steps, run completion). Shared by complete_task and complete_tasks so both
-- cascade identically. Runs under the caller's run-row lock.
-- A map whose combined output (the JSON array of its task outputs, as text) would exceed
-- pgflow.config.max_payload_bytes does not complete: it fails with an [OUTPUT_TOO_LARGE]
-- message, and so does the run. Each task output was checked alone, but the array is
-- what children read, and past 255 MB PostgreSQL cannot even build it.
create or replace function pgflow._complete_step(p_run_id uuid, p_step_slug text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_state pgflow.step_states;
  v_limit bigint := coalesce((select c.max_payload_bytes from pgflow.config c), 16777216);
  v_size bigint;
  v_error text;
begin
  -- Text size of '[o0,o1,...]': each output, a comma between, the brackets.
  select coalesce(sum(octet_length(coalesce(t.output::text, 'null'))), 0) + count(*) + 1 into v_size
    from pgflow.step_tasks t
    join pgflow.steps s on s.flow_slug = t.flow_slug and s.step_slug = t.step_slug
   where t.run_id = p_run_id and t.step_slug = p_step_slug and s.step_type = 'map';
  if v_size > v_limit then
    v_error := format('[OUTPUT_TOO_LARGE] Map step %s produced a combined output of %s bytes, over the %s-byte limit (pgflow.config.max_payload_bytes)',
                      p_step_slug, v_size, v_limit);
    update pgflow.step_states ss
       set status = 'failed', failed_at = greatest(now(), ss.started_at), error_message = v_error
     where ss.run_id = p_run_id and ss.step_slug = p_step_slug
       and ss.status = 'started' and ss.remaining_tasks = 0
    returning ss.* into v_state;
    if v_state.run_id is null then
      return;
    end if;
    perform pgflow.emit_event('step:' || p_step_slug || ':failed', jsonb_build_object(
      'event_type', 'step:failed',
      'run_id', p_run_id,
      'step_slug', p_step_slug,
      'status', 'failed',
      'error_message', v_error,
      'failed_at', v_state.failed_at));
    perform pgflow._fail_run(p_run_id, v_error);
    return;
  end if;

  update pgflow.step_states ss
     set status = 'completed',
         completed_at = greatest(now(), ss.started_at),
         output = case
           when s.step_type = 'map' then (
             select coalesce(jsonb_agg(t.output order by t.task_index), '[]'::jsonb)
               from pgflow.step_tasks t
              where t.run_id = p_run_id and t.step_slug = p_step_slug)
           else (
             select t.output from pgflow.step_tasks t
              where t.run_id = p_run_id and t.step_slug = p_step_slug and t.task_index = 0)
         end
    from pgflow.steps s
   where ss.run_id = p_run_id and ss.step_slug = p_step_slug
     and s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
     and ss.status = 'started' and ss.remaining_tasks = 0
  returning ss.* into v_state;
  if v_state.run_id is null then
    return;
  end if;

  perform pgflow._release_children(p_run_id, array[p_step_slug]);
  update pgflow.runs r set remaining_steps = r.remaining_steps - 1 where r.run_id = p_run_id;

  perform pgflow.emit_event('step:' || p_step_slug || ':completed', jsonb_build_object(
    'event_type', 'step:completed',
    'run_id', p_run_id,
    'step_slug', p_step_slug,
    'status', 'completed',
    'output', v_state.output,
    'completed_at', v_state.completed_at));

  perform pgflow._advance_run(p_run_id);
end;
$$;
