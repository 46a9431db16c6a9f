-- replaceable
-- pgflow.set_worker_dead_after (pgflow-rs extension): records how long the worker
-- `worker_id` may go without a heartbeat before the fleet's sweep presumes it dead. The
-- sweep uses the longer of this and pgflow.config.dead_worker_after, so a worker can only
-- lengthen its own grace. Refuses an unknown worker, a stopped one, and a value outside
-- 1 second .. 1 day, naming it. Idempotent (the last call wins).
-- SECURITY DEFINER: the worker role calls it without write access to the table.
create or replace function pgflow.set_worker_dead_after(worker_id uuid, dead_after interval)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if dead_after is null or dead_after < interval '1 second' or dead_after > interval '1 day' then
    raise exception 'dead_after for worker %: % is out of range (1 second to 1 day)',
      set_worker_dead_after.worker_id, coalesce(dead_after::text, 'NULL')
      using errcode = '22023';
  end if;
  if not exists (select 1 from pgflow.workers w
                  where w.worker_id = set_worker_dead_after.worker_id and w.stopped_at is null) then
    raise exception 'worker % is not registered or has stopped', set_worker_dead_after.worker_id
      using errcode = 'P0002';
  end if;
  insert into pgflow.worker_dead_after as d (worker_id, dead_after)
  values (set_worker_dead_after.worker_id, set_worker_dead_after.dead_after)
  on conflict on constraint worker_dead_after_pkey
  do update set dead_after = excluded.dead_after;
end;
$$;

revoke execute on function pgflow.set_worker_dead_after(uuid, interval) from public;

-- Installs that already have worker roles: whoever may register workers may set this.
do $$
declare
  v_role text;
begin
  for v_role in
    select distinct a.grantee::regrole::text
      from pg_catalog.pg_proc p, aclexplode(p.proacl) a
     where p.oid = 'pgflow.start_tasks(text, bigint[], uuid)'::regprocedure
       and a.privilege_type = 'EXECUTE' and a.grantee <> 0 and a.grantee <> p.proowner
  loop
    execute format('grant execute on function pgflow.set_worker_dead_after(uuid, interval) to %s', v_role);
  end loop;
end;
$$;
