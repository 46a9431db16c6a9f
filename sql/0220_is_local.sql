-- replaceable
-- pgflow.is_local: true on a development database, where ensure_flow_compiled may wipe and
-- recompile a changed flow. Upstream detects the Supabase CLI's fixed local JWT secret; on
-- plain Postgres set `pgflow.is_local = 'true'` (ALTER DATABASE ... SET, or per session).
create or replace function pgflow.is_local()
returns boolean
language sql
stable
set search_path = ''
as $$
  select coalesce(current_setting('app.settings.jwt_secret', true), '')
           = 'super-secret-jwt-token-with-at-least-32-characters-long'
      or coalesce(current_setting('pgflow.is_local', true), '') in ('true', 'on', '1');
$$;
