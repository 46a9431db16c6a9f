-- replaceable
-- pgflow.cancel_run (pgflow-rs extension): stops a started run for good. Under the run-row
-- lock the run, its unfinished steps (created/started) and their unfinished tasks
-- (queued/started) become `cancelled`, a terminal status; their queue messages are archived;
-- run:cancelled is emitted. Later complete_task/fail_task calls for the run change nothing.
-- Returns true when this call cancelled the run, false when it was not started (already
-- completed, failed or cancelled) or does not exist.
create or replace function pgflow.cancel_run(run_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
begin
  select * into v_run from pgflow.runs r where r.run_id = cancel_run.run_id for update;
  if v_run.run_id is null or v_run.status <> 'started' then
    return false;
  end if;

  perform pgflow._archive_messages(cancel_run.run_id);

  update pgflow.step_tasks t
     set status = 'cancelled'
   where t.run_id = cancel_run.run_id and t.status in ('queued', 'started');
  update pgflow.step_states ss
     set status = 'cancelled', cancelled_at = now()
   where ss.run_id = cancel_run.run_id and ss.status in ('created', 'started');
  update pgflow.runs r
     set status = 'cancelled', cancelled_at = now()
   where r.run_id = cancel_run.run_id
  returning * into v_run;

  perform pgflow.emit_event('run:cancelled', jsonb_build_object(
    'event_type', 'run:cancelled',
    'run_id', v_run.run_id,
    'flow_slug', v_run.flow_slug,
    'status', 'cancelled',
    'cancelled_at', v_run.cancelled_at));
  return true;
end;
$$;
