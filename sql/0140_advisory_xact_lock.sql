-- replaceable
-- pgflow._advisory_xact_lock (pgflow-rs addition): pg_advisory_xact_lock(p_key1, p_key2) that
-- gives up after p_wait with an error naming the backend holding the lock. Any role that can
-- connect may take any advisory lock, so a plain wait would let it stall flow definition and
-- worker startup forever; the error says whom to ask (or pg_terminate_backend).
create or replace function pgflow._advisory_xact_lock(p_key1 int, p_key2 int, p_what text,
                                                      p_wait interval default interval '30 seconds')
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_deadline timestamptz := clock_timestamp() + p_wait;
  v_holder text;
begin
  -- pg_advisory_xact_lock is strict: a NULL key locks nothing (the caller refuses the NULL).
  if p_key1 is null or p_key2 is null then
    return;
  end if;
  loop
    if pg_try_advisory_xact_lock(p_key1, p_key2) then
      return;
    end if;
    exit when clock_timestamp() >= v_deadline;
    perform pg_sleep(0.05);
  end loop;

  select format('backend %s (role %s, application %L)', l.pid, coalesce(a.usename::text, 'unknown'),
                coalesce(a.application_name, ''))
    into v_holder
    from pg_catalog.pg_locks l
    left join pg_catalog.pg_stat_activity a on a.pid = l.pid
   where l.locktype = 'advisory' and l.granted and l.objsubid = 2
     and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
     and l.classid::bigint = (p_key1::bigint & 4294967295)
     and l.objid::bigint = (p_key2::bigint & 4294967295)
   limit 1;
  raise exception 'could not lock % within %: held by %', p_what, p_wait, coalesce(v_holder, 'another session')
    using errcode = 'lock_not_available',
          hint = 'Wait for that session to finish, or end it with pg_terminate_backend(pid) if it should not hold the lock.';
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly instead (this one is only called inside pgflow's own functions).
revoke execute on function pgflow._advisory_xact_lock(integer, integer, text, interval) from public;
