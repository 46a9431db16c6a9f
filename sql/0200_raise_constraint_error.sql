-- replaceable
-- pgflow._raise_constraint_error: raises the error PostgreSQL itself would raise for a
-- violated constraint (same SQLSTATE, message, constraint and table fields, so callers and
-- conformance tests that match on them keep working), plus a DETAIL naming the offending
-- value in plain words. Used by the definition functions to refuse bad input before any row
-- is written, so a refused call leaves nothing behind.
create or replace function pgflow._raise_constraint_error(
  p_table text,
  p_constraint text,
  p_detail text,
  p_foreign_key boolean default false
)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if p_foreign_key then
    raise exception using
      message = format('insert or update on table "%s" violates foreign key constraint "%s"', p_table, p_constraint),
      errcode = 'foreign_key_violation',
      detail = p_detail,
      constraint = p_constraint,
      table = p_table,
      schema = 'pgflow';
  end if;
  raise exception using
    message = format('new row for relation "%s" violates check constraint "%s"', p_table, p_constraint),
    errcode = 'check_violation',
    detail = p_detail,
    constraint = p_constraint,
    table = p_table,
    schema = 'pgflow';
end;
$$;
