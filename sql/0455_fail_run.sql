-- replaceable
-- pgflow._fail_run: makes a started run failed because of one step, in one place for every
-- cause (a task out of attempts, an unmet condition in fail mode, a type violation): the
-- run gets failed_at, and the messages of all its queued/started tasks are archived so no
-- worker starts work that can no longer count. Emits run:failed (with error_message when
-- one is given). Other steps and tasks keep their statuses, as upstream.
create or replace function pgflow._fail_run(p_run_id uuid, p_error_message text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_run pgflow.runs;
begin
  update pgflow.runs r
     set status = 'failed', failed_at = now()
   where r.run_id = p_run_id and r.status = 'started'
  returning * into v_run;
  if v_run.run_id is null then
    return;
  end if;

  perform pgflow.emit_event('run:failed',
    jsonb_build_object(
      'event_type', 'run:failed',
      'run_id', v_run.run_id,
      'flow_slug', v_run.flow_slug,
      'status', 'failed',
      'failed_at', v_run.failed_at)
    || case when p_error_message is null then '{}'::jsonb
            else jsonb_build_object('error_message', p_error_message) end);

  perform pgflow._archive_messages(p_run_id);
end;
$$;
