-- replaceable
-- pgflow.is_valid_slug(slug): true for a usable flow or step slug.
-- A slug is 1..128 characters of ASCII letters, digits and underscores, starts with
-- a letter or underscore, and is not the reserved word `run` (case-sensitive).
-- Immutable, so check constraints on flows and steps may call it.
create or replace function pgflow.is_valid_slug(slug text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select coalesce(
    slug <> ''
    and length(slug) <= 128
    and slug ~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
    and slug <> 'run',
    false
  );
$$;
