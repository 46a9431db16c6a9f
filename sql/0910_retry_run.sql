-- replaceable
-- pgflow.retry_run (pgflow-rs extension): resumes a failed run from where it failed.
-- Completed steps keep their outputs. Every failed step, and every step left started when the
-- run failed, gets its unfinished tasks back: failed tasks restart with fresh attempts
-- (attempts_count 0), and each unfinished task gets a new queue message (the old ones were
-- archived when the run failed). A step that failed without tasks (an unmet condition in fail
-- mode) goes back to created and is evaluated again. The run becomes started and advances
-- (conditions, taskless steps, ready steps). Emits run:started. Returns true when the run was
-- resumed, false when it was not failed or does not exist.
create or replace function pgflow.retry_run(run_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
  v_step record;
  v_msg_ids bigint[];
begin
  select * into v_run from pgflow.runs r where r.run_id = retry_run.run_id for update;
  if v_run.run_id is null or v_run.status <> 'failed' then
    return false;
  end if;

  update pgflow.runs r set status = 'started', failed_at = null where r.run_id = v_run.run_id;

  -- Failed steps that never had tasks (condition failures) are evaluated afresh.
  update pgflow.step_states ss
     set status = 'created', failed_at = null, error_message = null, started_at = null, remaining_tasks = null
   where ss.run_id = v_run.run_id and ss.status = 'failed'
     and not exists (select 1 from pgflow.step_tasks t where t.run_id = ss.run_id and t.step_slug = ss.step_slug);

  for v_step in
    select ss.step_slug
      from pgflow.step_states ss
     where ss.run_id = v_run.run_id and ss.status in ('failed', 'started')
     order by ss.step_slug
       for update
  loop
    update pgflow.step_states ss
       set status = 'started', failed_at = null, error_message = null,
           remaining_tasks = (select count(*) from pgflow.step_tasks t
                               where t.run_id = ss.run_id and t.step_slug = ss.step_slug
                                 and t.status <> 'completed')
     where ss.run_id = v_run.run_id and ss.step_slug = v_step.step_slug;

    -- A step whose tasks all completed while the run was failing has nothing to resend
    -- (and pgmq.send_batch refuses an empty batch): it finishes below.
    continue when not exists (select 1 from pgflow.step_tasks t
                               where t.run_id = v_run.run_id and t.step_slug = v_step.step_slug
                                 and t.status <> 'completed');

    with pending as (
      select t.task_index
        from pgflow.step_tasks t
       where t.run_id = v_run.run_id and t.step_slug = v_step.step_slug and t.status <> 'completed'
       order by t.task_index
    ),
    sent as (
      select m.id, m.ord
        from pgmq.send_batch(
               v_run.flow_slug,
               array(select jsonb_build_object('flow_slug', v_run.flow_slug, 'run_id', v_run.run_id,
                                               'step_slug', v_step.step_slug, 'task_index', p.task_index)
                       from pending p order by p.task_index)) with ordinality as m(id, ord)
    )
    update pgflow.step_tasks t
       set status = 'queued', message_id = sent.id, started_at = null, failed_at = null,
           output = null, error_message = null,
           attempts_count = case when t.status = 'failed' then 0 else t.attempts_count end,
           permanently_stalled_at = null, last_worker_id = null
      from (select p.task_index, row_number() over (order by p.task_index) as ord from pending p) numbered
      join sent on sent.ord = numbered.ord
     where t.run_id = v_run.run_id and t.step_slug = v_step.step_slug and t.task_index = numbered.task_index;
  end loop;

  -- A step whose tasks all completed while the run was failing finishes now.
  for v_step in
    select ss.step_slug from pgflow.step_states ss
     where ss.run_id = v_run.run_id and ss.status = 'started' and ss.remaining_tasks = 0
     order by ss.step_slug
  loop
    perform pgflow._complete_step(v_run.run_id, v_step.step_slug);
  end loop;

  perform pgflow.emit_event('run:started', jsonb_build_object(
    'event_type', 'run:started',
    'run_id', v_run.run_id,
    'flow_slug', v_run.flow_slug,
    'input', v_run.input,
    'status', 'started',
    'remaining_steps', v_run.remaining_steps,
    'started_at', v_run.started_at));
  perform pg_notify('pgflow_tasks', v_run.flow_slug);

  perform pgflow._advance_run(v_run.run_id);
  return true;
end;
$$;
