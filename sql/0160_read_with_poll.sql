-- replaceable
-- pgflow.read_with_poll (pgflow-rs addition): pgmq.read_with_poll for a flow's queue, so a
-- worker role needs no privileges on pgmq's tables. SECURITY DEFINER, and it refuses what a
-- worker never needs: a queue that is not a pgflow flow's, and a visibility timeout longer
-- than the flow's longest step timeout + 2 s (what start_tasks sets anyway) or 5 minutes,
-- whichever is more, so a worker cannot hide messages for years. With max_poll_seconds 0 it reads once without waiting.
-- Returns pgmq's message rows.
create or replace function pgflow.read_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer default 5,
  poll_interval_ms integer default 100
)
returns setof pgmq.message_record
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_max_vt int;
begin
  -- No row for an unknown queue (greatest() would turn a NULL max into 300).
  select greatest(max(coalesce(s.opt_timeout, f.opt_timeout, 60)) + 2, 300) into v_max_vt
    from pgflow.flows f
    left join pgflow.steps s on s.flow_slug = f.flow_slug
   where f.flow_slug = read_with_poll.queue_name
   group by f.flow_slug;
  if v_max_vt is null then
    raise exception 'read_with_poll: % is not the queue of a pgflow flow',
      coalesce(quote_literal(left(read_with_poll.queue_name, 200)), 'NULL')
      using errcode = '42501';
  end if;
  if vt is null or vt < 0 or vt > v_max_vt then
    raise exception 'read_with_poll: vt must be 0 to % seconds for flow % (its longest step timeout + 2, at least 300), got %',
      v_max_vt, read_with_poll.queue_name, coalesce(vt::text, 'NULL');
  end if;
  if coalesce(max_poll_seconds, 0) <= 0 then
    return query select * from pgmq.read(read_with_poll.queue_name, vt, qty);
  else
    return query select * from pgmq.read_with_poll(read_with_poll.queue_name, vt, qty,
                                                   max_poll_seconds, coalesce(poll_interval_ms, 100));
  end if;
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly instead: by setup_roles to the worker role, and on upgrade to every role that
-- could already call start_tasks (an existing worker role, whose workers now read here).
revoke execute on function pgflow.read_with_poll(text, integer, integer, integer, integer) from public;
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
    execute format('grant execute on function pgflow.read_with_poll(text, integer, integer, integer, integer) to %s', v_role);
  end loop;
end;
$$;
