-- Privileges of the handler and usage objects: the functions workers call run as their owner
-- (SECURITY DEFINER, empty search_path), so a worker role needs only EXECUTE on them (granted by
-- pgflow.setup_roles). pgflow.set_step_handler stays the owner's: handler specs are part of
-- the flow definition.
alter function pgflow.record_task_usage(uuid, text, integer, uuid, text, bigint, bigint, bigint) security definer;
alter function pgflow.task_attempt(uuid, text, integer) security definer;
-- Nothing here is PUBLIC's: a schema's default privileges cannot take back the EXECUTE that
-- PostgreSQL grants PUBLIC on every new function, so each function says so itself.
revoke execute on function pgflow.record_task_usage(uuid, text, integer, uuid, text, bigint, bigint, bigint) from public;
revoke execute on function pgflow.task_attempt(uuid, text, integer) from public;
revoke execute on function pgflow.set_step_handler(text, text, jsonb) from public;
revoke execute on function pgflow._model_cost(text, bigint, bigint) from public;
