-- replaceable
-- pgflow.queue_archive_counts: per flow whose pgmq queue exists, how many messages its
-- archive table (pgmq.a_<queue>) holds: one per finished task attempt, until
-- prune_data_older_than deletes them. A pgflow-rs addition for the dashboard and /metrics.
-- The archive table name comes from pgmq.format_table_name and is quoted with %I, never
-- spliced from input: the only names used are flow slugs already stored in pgflow.flows.
-- Cost: one count(*) per archive table, so it scans each archive once per call.
create or replace function pgflow.queue_archive_counts()
returns table (flow_slug text, archived bigint)
language plpgsql
stable
set search_path = ''
as $$
declare
  v_slug text;
  v_table text;
begin
  for v_slug in select f.flow_slug from pgflow.flows f order by f.flow_slug loop
    v_table := pgmq.format_table_name(v_slug, 'a');
    if to_regclass(format('pgmq.%I', v_table)) is not null then
      flow_slug := v_slug;
      execute format('select count(*) from pgmq.%I', v_table) into archived;
      return next;
    end if;
  end loop;
end;
$$;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; pgflow functions are granted
-- explicitly (setup_roles) instead.
revoke execute on function pgflow.queue_archive_counts() from public;
