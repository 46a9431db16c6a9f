-- replaceable
-- pgflow.start_ready_steps: starts every ready step of a started run (status created,
-- remaining_deps 0, initial_tasks > 0), in step_slug order: the step becomes started with
-- remaining_tasks = initial_tasks, one pgmq message per task is sent in a single batch
-- (ordered by task_index, delayed by the step's start delay) and one queued task row per
-- message is inserted. Does not evaluate conditions: callers resolve them first.
-- Also wakes idle workers with a NOTIFY on `pgflow_tasks` (payload: the flow slug).
-- A map step that would fan out to more than pgflow.config.max_map_width tasks (a dependency
-- produced a huge array) is not started: it fails with a [MAP_TOO_WIDE] message, and so does
-- the run, so one output cannot create millions of tasks and messages in one transaction.
create or replace function pgflow.start_ready_steps(run_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
  v_step record;
  v_msg_ids bigint[];
  v_started int := 0;
  v_max_width int := coalesce((select c.max_map_width from pgflow.config c), 100000);
  v_error text;
begin
  select * into v_run from pgflow.runs r where r.run_id = start_ready_steps.run_id;
  if v_run.status is distinct from 'started' then
    return;
  end if;

  for v_step in
    select ss.step_slug, ss.initial_tasks, coalesce(s.opt_start_delay, 0) as start_delay, s.step_type
      from pgflow.step_states ss
      join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
     where ss.run_id = v_run.run_id
       and ss.status = 'created'
       and ss.remaining_deps = 0
       and ss.initial_tasks > 0
     order by ss.step_slug
       for update of ss
  loop
    if v_step.step_type = 'map' and v_step.initial_tasks > v_max_width then
      v_error := format('[MAP_TOO_WIDE] Map step %s would fan out to %s tasks, over the limit of %s (pgflow.config.max_map_width)',
                        v_step.step_slug, v_step.initial_tasks, v_max_width);
      update pgflow.step_states ss
         set status = 'failed', failed_at = now(), error_message = v_error
       where ss.run_id = v_run.run_id and ss.step_slug = v_step.step_slug;
      perform pgflow.emit_event('step:' || v_step.step_slug || ':failed', jsonb_build_object(
        'event_type', 'step:failed',
        'run_id', v_run.run_id,
        'step_slug', v_step.step_slug,
        'status', 'failed',
        'error_message', v_error,
        'failed_at', now()));
      perform pgflow._fail_run(v_run.run_id, v_error);
      return;
    end if;

    update pgflow.step_states ss
       set status = 'started', started_at = now(), remaining_tasks = v_step.initial_tasks
     where ss.run_id = v_run.run_id and ss.step_slug = v_step.step_slug;

    perform pgflow.emit_event('step:' || v_step.step_slug || ':started', jsonb_build_object(
      'event_type', 'step:started',
      'run_id', v_run.run_id,
      'step_slug', v_step.step_slug,
      'status', 'started',
      'started_at', now(),
      'remaining_tasks', v_step.initial_tasks,
      'remaining_deps', 0));

    select array_agg(m.id order by m.ord) into v_msg_ids
      from pgmq.send_batch(
             v_run.flow_slug,
             array(
               select jsonb_build_object(
                        'flow_slug', v_run.flow_slug,
                        'run_id', v_run.run_id,
                        'step_slug', v_step.step_slug,
                        'task_index', i)
                 from generate_series(0, v_step.initial_tasks - 1) i
                order by i),
             v_step.start_delay) with ordinality as m(id, ord);

    insert into pgflow.step_tasks (flow_slug, run_id, step_slug, task_index, message_id)
    select v_run.flow_slug, v_run.run_id, v_step.step_slug, (m.ord - 1)::int, m.id
      from unnest(v_msg_ids) with ordinality as m(id, ord);

    v_started := v_started + 1;
  end loop;

  if v_started > 0 then
    perform pg_notify('pgflow_tasks', v_run.flow_slug);
  end if;
end;
$$;
