-- replaceable
-- pgflow.create_flow: defines a flow and creates its pgmq queue.
-- NULL options take the defaults 3 attempts, base delay 5 s, timeout 60 s. Idempotent: an
-- existing flow keeps its stored options and is returned as it is; the queue is created only
-- when missing. Refuses invalid slugs and option values before writing anything.
-- pgmq lowercases queue table names, so slugs differing only in case (Pay, pay) would share
-- one queue, and deleting either would drop the other's: such a slug is refused, naming the
-- flow it collides with (checked under a lock on the lowercased slug, so two racing
-- definitions cannot both pass).
create or replace function pgflow.create_flow(
  flow_slug text,
  max_attempts int default null,
  base_delay int default null,
  timeout int default null
)
returns pgflow.flows
language plpgsql
set search_path = ''
as $$
declare
  v_flow pgflow.flows;
begin
  if not pgflow.is_valid_slug(create_flow.flow_slug) then
    perform pgflow._raise_constraint_error('flows', 'slug_is_valid', format(
      'Invalid flow slug %s: a flow slug is 1 to 47 letters, digits or underscores (47 because it also names the flow''s pgmq queue), starts with a letter or underscore, and is not "run".',
      coalesce(quote_literal(left(create_flow.flow_slug, 200)), 'NULL')));
  end if;
  if length(create_flow.flow_slug) > 47 then
    raise exception 'queue name is too long, maximum length is 47 characters'
      using detail = format('Flow slug %L is %s characters long; its pgmq queue name must be at most 47.',
                            create_flow.flow_slug, length(create_flow.flow_slug));
  end if;
  perform pgflow._advisory_xact_lock(2, hashtext(lower(create_flow.flow_slug)),
    format('flow slug %L for defining', lower(create_flow.flow_slug)));
  if exists (select 1 from pgflow.flows f
              where lower(f.flow_slug) = lower(create_flow.flow_slug) and f.flow_slug <> create_flow.flow_slug) then
    raise exception using
      errcode = 'unique_violation',
      message = format('flow slug %L differs only in case from existing flow %L, and they would share one queue',
                       create_flow.flow_slug,
                       (select f.flow_slug from pgflow.flows f
                         where lower(f.flow_slug) = lower(create_flow.flow_slug) order by 1 limit 1)),
      hint = 'pgmq lowercases queue names: choose a slug that differs in more than case.';
  end if;
  if max_attempts < 0 then
    perform pgflow._raise_constraint_error('flows', 'opt_max_attempts_is_nonnegative',
      format('max_attempts must be 0 or more, got %s.', max_attempts));
  end if;
  if base_delay < 0 then
    perform pgflow._raise_constraint_error('flows', 'opt_base_delay_is_nonnegative',
      format('base_delay must be 0 or more, got %s.', base_delay));
  end if;
  if timeout <= 0 then
    perform pgflow._raise_constraint_error('flows', 'opt_timeout_is_positive',
      format('timeout must be more than 0 seconds, got %s.', timeout));
  end if;

  insert into pgflow.flows as f (flow_slug, opt_max_attempts, opt_base_delay, opt_timeout)
  values (create_flow.flow_slug, coalesce(max_attempts, 3), coalesce(base_delay, 5), coalesce(timeout, 60))
  on conflict on constraint flows_pkey do nothing
  returning * into v_flow;

  if v_flow.flow_slug is null then
    select * into v_flow from pgflow.flows f where f.flow_slug = create_flow.flow_slug;
  end if;

  if not exists (select 1 from pgmq.list_queues() q where q.queue_name = create_flow.flow_slug) then
    perform pgmq.create(create_flow.flow_slug);
  end if;

  return v_flow;
end;
$$;
