-- Privileges of the handler and usage objects: the functions workers call run as their owner
-- (SECURITY DEFINER, empty search_path), so a worker role needs only EXECUTE on them (granted by
-- pgflow.setup_roles). pgflow.set_step_handler stays the owner's: handler specs are part of
-- the flow definition.
alter function pgflow.record_task_usage(uuid, text, integer, uuid, text, bigint, bigint, bigint) security definer;
alter function pgflow.task_attempt(uuid, text, integer) security definer;
