-- replaceable
-- pgflow.claim_tasks (pgflow-rs extension): reads up to `qty` visible messages of a flow's
-- queue and starts their tasks for `worker_id` (as pgmq.read + start_tasks would), in one
-- statement, stamping every started task with the caller's `claim_id`. Idempotent per
-- claim_id: when tasks of this claim are already started by this worker, nothing new is read
-- and those tasks are returned again. So a worker that lost the reply (connection cut after
-- the commit) retries the same call with the same claim_id and gets exactly the tasks it
-- claimed, instead of stranding them until the stall sweep. `vt` is the read's visibility
-- timeout; start_tasks then moves each message to its step's timeout + 2 s.
-- Returns pgflow.worker_task_record: upstream's step_task_record plus the attempt number and
-- the step's effective timeout, retry settings and retry delay, which the worker obeys.
-- Earlier versions returned pgflow.step_task_record. A return type cannot be replaced, so
-- the function is dropped and created again; the roles that could call it (a worker role)
-- are remembered first and get EXECUTE back below.
select pg_catalog.set_config('pgflow.claim_tasks_grantees', coalesce((
  select string_agg(distinct a.grantee::text, ',')
    from pg_catalog.pg_proc p, aclexplode(p.proacl) a
   where p.oid = to_regprocedure('pgflow.claim_tasks(text, uuid, uuid, integer, integer)')
     and a.privilege_type = 'EXECUTE' and a.grantee <> 0 and a.grantee <> p.proowner), ''), true);
drop function if exists pgflow.claim_tasks(text, uuid, uuid, integer, integer);

create function pgflow.claim_tasks(flow_slug text, worker_id uuid, claim_id uuid, qty integer, vt integer default 30)
returns setof pgflow.worker_task_record
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replayed boolean;
  v_tasks pgflow.step_task_record[];
begin
  if claim_id is null then
    raise exception 'claim_tasks needs a claim_id (a new uuid per claim, reused only to retry it)';
  end if;

  select true into v_replayed
    from pgflow.step_tasks t
   where t.last_claim_id = claim_tasks.claim_id and t.status = 'started'
     and t.last_worker_id = claim_tasks.worker_id and t.flow_slug = claim_tasks.flow_slug
   limit 1;

  if v_replayed then
    v_tasks := array(
    select r from (
      select array_agg(t.run_id) as run_ids, array_agg(t.step_slug) as slugs,
             array_agg(t.task_index) as idx, array_agg(t.message_id) as msgs
        from pgflow.step_tasks t
       where t.last_claim_id = claim_tasks.claim_id and t.status = 'started'
         and t.last_worker_id = claim_tasks.worker_id and t.flow_slug = claim_tasks.flow_slug
    ) c
    cross join lateral pgflow._task_records(claim_tasks.flow_slug, c.run_ids, c.slugs, c.idx, c.msgs) r);
    return query select * from pgflow._worker_task_records(claim_tasks.flow_slug, v_tasks);
    return;
  end if;

  -- Started in this statement, extended in the next one (which sees the new attempt counts).
  v_tasks := array(select r from pgflow._start_tasks(
    claim_tasks.flow_slug,
    array(select m.msg_id from pgmq.read(claim_tasks.flow_slug, claim_tasks.vt, claim_tasks.qty) m),
    claim_tasks.worker_id,
    claim_tasks.claim_id) r);
  return query select * from pgflow._worker_task_records(claim_tasks.flow_slug, v_tasks);
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly instead (setup_roles), and here again to whoever could call the old version.
revoke execute on function pgflow.claim_tasks(text, uuid, uuid, integer, integer) from public;
do $$
declare
  v_role oid;
begin
  for v_role in
    select g::oid from unnest(string_to_array(current_setting('pgflow.claim_tasks_grantees', true), ',')) g
     where g <> ''
  loop
    execute format('grant execute on function pgflow.claim_tasks(text, uuid, uuid, integer, integer) to %s', v_role::regrole);
  end loop;
end;
$$;
