-- replaceable
-- pgflow._payload_too_large: the message to report when a run input or a task output is
-- larger than pgflow.config.max_payload_bytes (default 16 MiB), NULL when it fits. Every
-- stored payload is copied into step inputs, events and queue reads, so an unbounded one
-- would hurt every worker; refusing it up front keeps the database as it was.
-- The size is that of the JSON text, what readers receive, not the stored (possibly
-- compressed) size, which a repetitive 200 MB value would shrink below any limit. The limit
-- comes from the config table only: the callers are SECURITY DEFINER functions, and a
-- session setting could be changed by any caller.
create or replace function pgflow._payload_too_large(p_what text, p_value jsonb)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_limit bigint := coalesce((select c.max_payload_bytes from pgflow.config c), 16777216);
  -- No shortcut through the stored size: compression shrinks repetitive text, and a number
  -- like 1e100000 is a few bytes stored but 100001 digits as text.
  v_size bigint := octet_length(p_value::text);
begin
  if v_size > v_limit then
    return format('%s is %s bytes, over the %s-byte limit (pgflow.config.max_payload_bytes)', p_what, v_size, v_limit);
  end if;
  return null;
end;
$$;
