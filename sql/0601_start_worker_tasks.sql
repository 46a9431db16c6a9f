-- replaceable
-- pgflow.start_worker_tasks (pgflow-rs extension): start_tasks for pgflow-rs workers that
-- read with read_with_poll. Starts the same tasks as start_tasks (same rules, same
-- visibility: the step's timeout + 2 s) but returns pgflow.worker_task_record: the task's
-- attempt number and its step's effective timeout and retry settings as the database has
-- them now, which the worker obeys instead of its own flow definition.
-- SECURITY DEFINER: the worker role calls it without write access to the tables.
create or replace function pgflow.start_worker_tasks(flow_slug text, msg_ids bigint[], worker_id uuid)
returns setof pgflow.worker_task_record
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_tasks pgflow.step_task_record[];
begin
  -- Started in this statement, extended in the next one (which sees the new attempt counts).
  v_tasks := array(select r from pgflow._start_tasks(
    start_worker_tasks.flow_slug, start_worker_tasks.msg_ids, start_worker_tasks.worker_id, null) r);
  return query select * from pgflow._worker_task_records(start_worker_tasks.flow_slug, v_tasks);
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly instead: by setup_roles to the worker role, and on upgrade to every role that
-- could already call start_tasks (an existing worker role, whose workers now start here).
revoke execute on function pgflow.start_worker_tasks(text, bigint[], uuid) from public;
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
    execute format('grant execute on function pgflow.start_worker_tasks(text, bigint[], uuid) to %s', v_role);
  end loop;
end;
$$;
