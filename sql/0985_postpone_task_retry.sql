-- replaceable
-- pgflow.postpone_task_retry (pgflow-rs extension): keeps a failed-and-requeued task's message
-- hidden for delay_seconds from now, for a worker whose handler was told to come back later
-- (an HTTP 429/503 with Retry-After longer than the step's backoff). SECURITY DEFINER, so a
-- worker role needs no pgmq privileges. Invariants: it only touches the message of a task
-- that is queued (never a started, completed or other flow's message, never a non-pgflow
-- queue), never makes a message visible sooner than it already would be, and refuses delays
-- outside 0..86400 seconds. Returns true when the message was postponed, false when nothing
-- was done (the task is not queued, or its message is already hidden that long).
create or replace function pgflow.postpone_task_retry(
  run_id uuid,
  step_slug text,
  task_index integer,
  delay_seconds integer
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_flow_slug text;
  v_msg_id bigint;
  v_moved int;
begin
  if delay_seconds is null or delay_seconds < 0 or delay_seconds > 86400 then
    raise exception 'postpone_task_retry: delay_seconds must be 0 to 86400, got % (run %, step %, task %)',
      coalesce(delay_seconds::text, 'NULL'), postpone_task_retry.run_id,
      coalesce(quote_literal(left(postpone_task_retry.step_slug, 200)), 'NULL'),
      postpone_task_retry.task_index
      using errcode = '22023';
  end if;
  select t.flow_slug, t.message_id into v_flow_slug, v_msg_id
    from pgflow.step_tasks t
   where t.run_id = postpone_task_retry.run_id
     and t.step_slug = postpone_task_retry.step_slug
     and t.task_index = postpone_task_retry.task_index
     and t.status = 'queued'
     and t.message_id is not null;
  if not found then
    return false;
  end if;
  -- The task's flow_slug is its queue (step_tasks references pgflow.flows).
  execute format(
    $q$
    update pgmq.%I q
       set vt = clock_timestamp() + make_interval(secs => $2)
     where q.msg_id = $1
       and q.vt < clock_timestamp() + make_interval(secs => $2)
    $q$,
    pgmq.format_table_name(v_flow_slug, 'q')
  ) using v_msg_id, delay_seconds;
  get diagnostics v_moved = row_count;
  return v_moved > 0;
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly instead: by setup_roles to the worker role, and on upgrade to every role that
-- could already call start_tasks (an existing worker role). Those roles also get what
-- `pgflow worker` needs to load a flow's shape (pgflow._get_flow_shape and the pgflow.deps it
-- reads: flow definitions, which a worker role could already read in flows and steps).
revoke execute on function pgflow.postpone_task_retry(uuid, text, integer, integer) from public;
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
    execute format('grant execute on function pgflow.postpone_task_retry(uuid, text, integer, integer), pgflow._get_flow_shape(text) to %s', v_role);
    execute format('grant select on pgflow.deps to %s', v_role);
  end loop;
end;
$$;
