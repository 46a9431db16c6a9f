-- Privileges: nothing in schema pgflow is usable by PUBLIC (as upstream), and the functions
-- a worker calls run as their owner (SECURITY DEFINER, with an empty search_path), so a
-- least-privileged worker role needs only EXECUTE on them, not write access to the tables.
-- Roles are opt-in: see pgflow.setup_roles (`pgflow install --create-roles`).
revoke all on schema pgflow from public;
revoke execute on all functions in schema pgflow from public;
alter default privileges in schema pgflow revoke execute on functions from public;

alter function pgflow.start_tasks(text, bigint[], uuid) security definer;
alter function pgflow.complete_task(uuid, text, integer, jsonb) security definer;
alter function pgflow.complete_tasks(jsonb) security definer;
alter function pgflow.fail_task(uuid, text, integer, text) security definer;
alter function pgflow.mark_worker_stopped(uuid) security definer;
alter function pgflow.ensure_flow_compiled(text, jsonb, boolean) security definer;
