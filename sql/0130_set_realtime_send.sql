-- replaceable
-- pgflow.set_realtime_send (pgflow-rs addition): turns the broadcast of events through
-- Supabase's realtime.send on or off (pgflow.config.realtime_send); `pgflow install
-- --realtime` calls it. Turning it on is refused, changing nothing, unless realtime.send
-- exists and it and its schema belong to a superuser or the owner of schema pgflow.
-- Returns the new setting. Only the config table's owner may call it (no grants).
create or replace function pgflow.set_realtime_send(enabled boolean)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  if enabled is null then
    raise exception 'set_realtime_send: enabled must be true or false, not null';
  end if;
  if enabled and not pgflow._realtime_send_trusted() then
    raise exception 'cannot enable realtime: %',
      case when pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null
           then 'no function realtime.send(jsonb, text, text, boolean) exists'
           else 'realtime.send or its schema is owned by a role that is neither a superuser nor the owner of schema pgflow'
      end
      using hint = 'Only a realtime.send installed by a trusted role (e.g. Supabase''s) is called, because pgflow calls it with its owner''s privileges.';
  end if;
  update pgflow.config set realtime_send = enabled;
  return enabled;
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly (setup_roles) instead.
revoke execute on function pgflow.set_realtime_send(boolean) from public;
