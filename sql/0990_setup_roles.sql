-- replaceable
-- pgflow.setup_roles (pgflow-rs extension): creates (when missing) two NOLOGIN roles and
-- grants them the least they need; give them to login roles with GRANT ... TO.
--   worker_role: register and heartbeat in pgflow.workers, read run inputs, and call the
--     worker functions read_with_poll, start_tasks, start_worker_tasks, claim_tasks, complete_task(s), fail_task,
--     mark_worker_stopped, set_worker_dead_after, requeue_stalled_tasks and
--     ensure_flow_compiled (which for this role only verifies a flow, or creates a missing
--     one when pgflow.config.workers_may_compile is on), record usage (record_task_usage,
--     task_attempt), read built-in handler specs (step_handlers) and flow shapes
--     (_get_flow_shape, deps), and postpone a queued task's retry (postpone_task_retry, for
--     a server's Retry-After): all `pgflow worker` needs. It cannot start, cancel
--     or delete runs, define, change or delete flows, nor write tables directly.
--   reader_role: read-only inspection: every pgflow table and view, queue metrics.
--     The worker role has no privileges in schema pgmq: it reads its flows' queues through
--     the SECURITY DEFINER pgflow.read_with_poll. Broader pgmq grants made by earlier
--     versions of this function are revoked.
-- Queues created later (new flows) are covered for the reader through default privileges of
-- the role running this function, which should be the role that owns the schema and creates
-- flows. Needs CREATEROLE (or superuser). Idempotent.
create or replace function pgflow.setup_roles(
  worker_role text default 'pgflow_worker',
  reader_role text default 'pgflow_reader'
)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = worker_role) then
    execute format('create role %I nologin', worker_role);
  end if;
  if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = reader_role) then
    execute format('create role %I nologin', reader_role);
  end if;

  execute format('grant usage on schema pgflow to %I, %I', worker_role, reader_role);
  execute format('grant usage on schema pgmq to %I', reader_role);

  -- Worker: no direct access to pgmq (it could otherwise hide, rename or lock every queue,
  -- pgflow's or not); what earlier versions granted is taken back.
  execute format('revoke all on all tables in schema pgmq from %I', worker_role);
  execute format('alter default privileges in schema pgmq revoke all on tables from %I', worker_role);
  execute format('revoke usage on schema pgmq from %I', worker_role);
  execute format('revoke execute on all functions in schema pgmq from %I', worker_role);
  execute format('grant select, insert on pgflow.workers to %I', worker_role);
  execute format('grant update (last_heartbeat_at) on pgflow.workers to %I', worker_role);
  execute format('grant select on pgflow.runs, pgflow.flows, pgflow.steps, pgflow.deps, pgflow.step_handlers to %I', worker_role);
  execute format('grant execute on function
      pgflow.read_with_poll(text, integer, integer, integer, integer),
      pgflow.start_tasks(text, bigint[], uuid),
      pgflow.start_worker_tasks(text, bigint[], uuid),
      pgflow.claim_tasks(text, uuid, uuid, integer, integer),
      pgflow.complete_task(uuid, text, integer, jsonb),
      pgflow.complete_tasks(jsonb),
      pgflow.fail_task(uuid, text, integer, text),
      pgflow.mark_worker_stopped(uuid),
      pgflow.set_worker_dead_after(uuid, interval),
      pgflow.requeue_stalled_tasks(),
      pgflow.ensure_flow_compiled(text, jsonb, boolean),
      pgflow._ensure_flow_compiled_limited(text, jsonb, boolean),
      pgflow.get_run_with_states(uuid),
      pgflow.record_task_usage(uuid, text, integer, uuid, text, bigint, bigint, bigint),
      pgflow.task_attempt(uuid, text, integer),
      pgflow.postpone_task_retry(uuid, text, integer, integer),
      pgflow._get_flow_shape(text)
    to %I', worker_role);

  -- Reader: inspection only.
  execute format('grant select on all tables in schema pgflow to %I', reader_role);
  execute format('alter default privileges in schema pgflow grant select on tables to %I', reader_role);
  execute format('grant select on all tables in schema pgmq to %I', reader_role);
  execute format('grant select on all sequences in schema pgmq to %I', reader_role);
  execute format('alter default privileges in schema pgmq grant select on tables to %I', reader_role);
  execute format('alter default privileges in schema pgmq grant select on sequences to %I', reader_role);
  execute format('grant execute on function pgmq.metrics(text), pgmq.metrics_all(), pgmq.list_queues() to %I', reader_role);
  execute format('grant execute on function pgflow.get_run_with_states(uuid) to %I', reader_role);
  execute format('grant execute on function pgflow.queue_archive_counts() to %I', reader_role);
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly (setup_roles) instead.
revoke execute on function pgflow.setup_roles(text, text) from public;
