-- replaceable
-- pgflow._realtime_send_trusted (pgflow-rs addition): true when
-- `realtime.send(jsonb, text, text, boolean)` exists and both the function and its schema
-- belong to a trusted role: a superuser or the owner of schema pgflow. Events are emitted
-- from SECURITY DEFINER functions, so realtime.send runs with the pgflow owner's
-- privileges; a `realtime` schema created by any other role (anyone with CREATE on the
-- database can create one) would otherwise run that role's code as the pgflow owner.
-- Checked when realtime is enabled and again before every call.
create or replace function pgflow._realtime_send_trusted()
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (
    select 1
      from pg_catalog.pg_proc p
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      join pg_catalog.pg_roles fo on fo.oid = p.proowner
      join pg_catalog.pg_roles so on so.oid = n.nspowner
     where p.oid = pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)')
       and n.nspname = 'realtime'
       and (fo.rolsuper or fo.oid = (select nspowner from pg_catalog.pg_namespace where nspname = 'pgflow'))
       and (so.rolsuper or so.oid = (select nspowner from pg_catalog.pg_namespace where nspname = 'pgflow'))
  );
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly (setup_roles) instead.
revoke execute on function pgflow._realtime_send_trusted() from public;
