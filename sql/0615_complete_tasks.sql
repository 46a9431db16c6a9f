-- replaceable
-- pgflow.complete_tasks (pgflow-rs extension): complete_task for many tasks in one call and
-- one transaction, so a worker pays one round-trip and one commit for a batch of results.
-- `completions` is a JSON array of {"run_id", "step_slug", "task_index", "output"}; each
-- element gets complete_task's semantics (idempotent, the first report wins).
-- Set-based where it matters: per run, under its row lock, the started tasks of started map
-- steps are completed by one UPDATE, each step's remaining_tasks drops once, their messages
-- are archived with one pgmq call, and only steps that reached zero cascade. Every other
-- element (single steps, which may cascade or violate a map child's type, late, duplicate
-- or oversized reports, runs no longer started) goes through complete_task itself.
-- Runs are taken in run_id order and steps in step_slug order, the order complete_task
-- uses, so concurrent batches cannot deadlock. Returns the task rows, one per distinct task.
-- SECURITY DEFINER: the worker role calls it without write access to the tables.
create or replace function pgflow.complete_tasks(completions jsonb)
returns setof pgflow.step_tasks
language plpgsql
-- Stated here, not only in 0980: `create or replace` would otherwise reset it to INVOKER.
security definer
set search_path = ''
as $$
declare
  v_run pgflow.runs;
  v_run_id uuid;
  v_rows pgflow.step_tasks[];
  v_done text[];
  v_msg_ids bigint[];
  v_finished text[];
  v_slug text;
  v_item record;
  v_run_ids uuid[];
  v_slugs text[];
  v_indexes int[];
  v_outputs jsonb[];
begin
  if jsonb_typeof(completions) is distinct from 'array' then
    raise exception 'complete_tasks expects a JSON array of {"run_id", "step_slug", "task_index", "output"}, got %',
      coalesce(jsonb_typeof(completions), 'NULL');
  end if;

  -- Parsed once into parallel arrays; later queries unnest them (no temp table, so no
  -- catalog churn per call).
  select array_agg((c ->> 'run_id')::uuid order by ord), array_agg(c ->> 'step_slug' order by ord),
         array_agg((c ->> 'task_index')::int order by ord), array_agg(c -> 'output' order by ord)
    into v_run_ids, v_slugs, v_indexes, v_outputs
    from jsonb_array_elements(completions) with ordinality as e(c, ord);

  for v_run_id in select distinct c.run_id from unnest(v_run_ids, v_slugs, v_indexes, v_outputs) with ordinality as c(run_id, step_slug, task_index, output, ord) order by 1 loop
    select * into v_run from pgflow.runs r where r.run_id = v_run_id for update;
    v_done := '{}';

    if v_run.status = 'started' then
      perform 1 from pgflow.step_states ss
       where ss.run_id = v_run_id
         and ss.step_slug in (select c.step_slug from unnest(v_run_ids, v_slugs, v_indexes, v_outputs) with ordinality as c(run_id, step_slug, task_index, output, ord) where c.run_id = v_run_id)
       order by ss.step_slug
         for update;

      -- The first report per task decides (as with one complete_task call each): when it
      -- is oversized the task goes the one-by-one way (a failed attempt) and a later, valid
      -- report in the same batch must not win over it.
      with items as materialized (
        select f.step_slug, f.task_index, f.output from (
          select distinct on (c.step_slug, c.task_index) c.step_slug, c.task_index, c.output
            from unnest(v_run_ids, v_slugs, v_indexes, v_outputs) with ordinality as c(run_id, step_slug, task_index, output, ord)
            join pgflow.step_states ss on ss.run_id = v_run_id and ss.step_slug = c.step_slug and ss.status = 'started'
            join pgflow.steps s on s.flow_slug = v_run.flow_slug and s.step_slug = c.step_slug and s.step_type = 'map'
           where c.run_id = v_run_id
           order by c.step_slug, c.task_index, c.ord
        ) f
        where pgflow._payload_too_large('task output', f.output) is null
      ),
      done as (
        update pgflow.step_tasks t
           set status = 'completed', completed_at = greatest(now(), t.started_at), output = i.output
          from items i
         where t.run_id = v_run_id and t.step_slug = i.step_slug and t.task_index = i.task_index
           and t.status = 'started'
        returning t.*
      )
      select array_agg(d) into v_rows from done d;

      if v_rows is not null then
        select array_agg(r.step_slug || '/' || r.task_index),
               array_agg(r.message_id) filter (where r.message_id is not null)
          into v_done, v_msg_ids
          from unnest(v_rows) r;

        with per_step as (
          select r.step_slug, count(*)::int as n from unnest(v_rows) r group by 1
        )
        update pgflow.step_states ss
           set remaining_tasks = ss.remaining_tasks - p.n
          from per_step p
         where ss.run_id = v_run_id and ss.step_slug = p.step_slug;

        if v_msg_ids is not null then
          perform pgmq.archive(v_run.flow_slug, v_msg_ids);
        end if;

        select array_agg(ss.step_slug order by ss.step_slug) into v_finished
          from pgflow.step_states ss
         where ss.run_id = v_run_id and ss.status = 'started' and ss.remaining_tasks = 0
           and ss.step_slug in (select r.step_slug from unnest(v_rows) r);
        foreach v_slug in array coalesce(v_finished, '{}') loop
          -- A cascade may have ended the run (an unmet condition in fail mode): then the
          -- remaining steps stay as they are, as they would with one complete_task each.
          exit when (select r.status from pgflow.runs r where r.run_id = v_run_id) <> 'started';
          perform pgflow._complete_step(v_run_id, v_slug);
        end loop;

        return query select * from unnest(v_rows);
      end if;
    end if;

    -- Everything the set-based path did not take, one by one with full semantics.
    for v_item in
      select c.step_slug, c.task_index, c.output
        from unnest(v_run_ids, v_slugs, v_indexes, v_outputs) with ordinality as c(run_id, step_slug, task_index, output, ord)
       where c.run_id = v_run_id
         and not (c.step_slug || '/' || c.task_index) = any (v_done)
       order by 1, 2, c.ord
    loop
      return query select * from pgflow.complete_task(v_run_id, v_item.step_slug, v_item.task_index, v_item.output);
    end loop;
  end loop;
end;
$$;
