-- replaceable
-- pgflow.emit_event: publishes one run or step transition. The single place events leave
-- the database, so the transport can be swapped without touching the state machine.
-- Sends `{"topic","event","payload"}` with pg_notify on channel `pgflow_events` inside the
-- caller's transaction, so listeners only ever see committed transitions.
-- Any role that can connect may LISTEN (PostgreSQL has no privilege for it), so the NOTIFY
-- payload carries ids, statuses, counts and timestamps only, never inputs, outputs or error
-- messages: consumers read those from the tables through privileges they hold. Any role may
-- also NOTIFY, so consumers treat an event as a hint to re-read, never as the truth. Such a
-- payload stays far below pg_notify's 8000-byte limit (slugs are at most 128 characters).
-- When pgflow.config.realtime_send is on, the full upstream payload is also broadcast
-- through Supabase's `realtime.send` on pgflow's topic, whose channels have their own access
-- control. Events are emitted inside SECURITY DEFINER functions, so realtime.send would run
-- as the pgflow owner: it is called only when the operator enabled it and, checked again at
-- every call, it and its schema still belong to a trusted role (_realtime_send_trusted); a
-- realtime.send that anyone else created is never called.
create or replace function pgflow.emit_event(event text, payload jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_topic text := 'pgflow:run:' || (payload ->> 'run_id');
  v_public jsonb;
begin
  select coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) into v_public
    from jsonb_each(payload) e
   where e.key in ('event_type', 'run_id', 'flow_slug', 'step_slug', 'task_index', 'status',
                   'skip_reason', 'remaining_steps', 'remaining_tasks', 'remaining_deps',
                   'started_at', 'completed_at', 'failed_at', 'skipped_at', 'cancelled_at');
  perform pg_notify('pgflow_events',
    jsonb_build_object('topic', v_topic, 'event', event, 'payload', v_public)::text);

  if coalesce((select c.realtime_send from pgflow.config c), false)
     and pgflow._realtime_send_trusted() then
    execute 'select realtime.send($1::jsonb, $2::text, $3::text, false)' using payload, event, v_topic;
  end if;
end;
$$;
