-- replaceable
-- pgflow._payload_too_large: the message to report when a run input or a task output is
-- larger than `pgflow.max_payload_bytes` (default 16 MiB), NULL when it fits. Every stored
-- payload is copied into step inputs, events and queue reads, so an unbounded one would
-- hurt every worker; refusing it up front keeps the database as it was.
create or replace function pgflow._payload_too_large(p_what text, p_value jsonb)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_limit bigint := coalesce(nullif(current_setting('pgflow.max_payload_bytes', true), '')::bigint, 16777216);
  v_size bigint := pg_column_size(p_value);
begin
  if v_size > v_limit then
    return format('%s is %s bytes, over the %s-byte limit (setting pgflow.max_payload_bytes)', p_what, v_size, v_limit);
  end if;
  return null;
end;
$$;
