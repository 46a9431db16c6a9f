-- replaceable
-- pgflow._release_children: tells the children of steps that just completed or were skipped
-- (in plain skip mode) that one more parent is resolved: remaining_deps drops by the number of
-- such parents, and a child map still waiting for its task count (initial_tasks NULL) learns
-- it from its single parent: the parent's task count for a map parent, the length of its
-- array output for a single parent (stays NULL when not an array), 0 for a skipped parent.
-- Children are locked in step_slug order (the order every writer uses). Runs under the
-- caller's run-row lock.
create or replace function pgflow._release_children(p_run_id uuid, p_parent_slugs text[])
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform 1
     from pgflow.step_states child
    where child.run_id = p_run_id
      and child.step_slug in (
        select d.step_slug from pgflow.deps d
         where d.flow_slug = child.flow_slug and d.dep_slug = any (p_parent_slugs))
    order by child.step_slug
      for update;

  update pgflow.step_states child
     set remaining_deps = child.remaining_deps - p.n,
         initial_tasks = case
           when cs.step_type = 'map' and child.initial_tasks is null then (
             select case
                      when ps.status = 'skipped' then 0
                      when pst.step_type = 'map' then ps.initial_tasks
                      when jsonb_typeof(ps.output) = 'array' then jsonb_array_length(ps.output)
                      else null
                    end
               from pgflow.deps d
               join pgflow.step_states ps on ps.run_id = p_run_id and ps.step_slug = d.dep_slug
               join pgflow.steps pst on pst.flow_slug = d.flow_slug and pst.step_slug = d.dep_slug
              where d.flow_slug = child.flow_slug and d.step_slug = child.step_slug
              limit 1)
           else child.initial_tasks
         end
    from (
      select d.step_slug, count(*)::int as n
        from pgflow.deps d
        join pgflow.runs r on r.flow_slug = d.flow_slug
       where r.run_id = p_run_id and d.dep_slug = any (p_parent_slugs)
       group by d.step_slug
    ) p,
    pgflow.steps cs
   where child.run_id = p_run_id
     and child.step_slug = p.step_slug
     and cs.flow_slug = child.flow_slug and cs.step_slug = child.step_slug;
end;
$$;
