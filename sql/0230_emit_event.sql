-- replaceable
-- pgflow.emit_event: publishes one run or step transition. The single place events leave
-- the database, so the transport can be swapped without touching the state machine.
-- Sends `{"topic","event","payload"}` with pg_notify on channel `pgflow_events` inside the
-- caller's transaction, so listeners only ever see committed transitions. pg_notify refuses
-- payloads of 8000 bytes or more: large `input`/`output` values are replaced by null and
-- named in `payload.truncated` (clients re-read the row), and a long error message is cut,
-- so an event can never make a transition fail. When a Supabase `realtime.send` exists the
-- full payload is also broadcast there on pgflow's topic, as upstream does.
create or replace function pgflow.emit_event(event text, payload jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_topic text := 'pgflow:run:' || (payload ->> 'run_id');
  v_small jsonb := payload;
  v_envelope text;
  v_limit constant int := 7800;
begin
  v_envelope := jsonb_build_object('topic', v_topic, 'event', event, 'payload', v_small)::text;
  if octet_length(v_envelope) > v_limit then
    v_small := (payload - 'input' - 'output')
      || jsonb_build_object('truncated', (
           select coalesce(jsonb_agg(k), '[]'::jsonb) from unnest(array['input', 'output']) k where payload ? k));
    if payload ? 'input' then v_small := v_small || '{"input": null}'; end if;
    if payload ? 'output' then v_small := v_small || '{"output": null}'; end if;
    v_envelope := jsonb_build_object('topic', v_topic, 'event', event, 'payload', v_small)::text;
  end if;
  if octet_length(v_envelope) > v_limit and v_small ? 'error_message' then
    v_small := jsonb_set(v_small, '{error_message}',
      to_jsonb(left(v_small ->> 'error_message', 1000) || ' [truncated]'));
    v_envelope := jsonb_build_object('topic', v_topic, 'event', event, 'payload', v_small)::text;
  end if;
  if octet_length(v_envelope) <= v_limit then
    perform pg_notify('pgflow_events', v_envelope);
  end if;

  if to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null then
    execute 'select realtime.send($1, $2, $3, false)' using payload, event, v_topic;
  end if;
end;
$$;
