-- replaceable
-- pgflow._task_records: what a worker is handed for each started task (SPEC §3.4): root
-- single -> input {} and flow_input = the run input; dependent single -> the completed
-- parents' outputs by slug (skipped parents absent); root map -> its element of the run
-- input; dependent map -> its element of the parent's output. Ordered by message id.
create or replace function pgflow._task_records(
  p_flow_slug text, p_run_ids uuid[], p_step_slugs text[], p_task_indexes int[], p_msg_ids bigint[]
)
returns setof pgflow.step_task_record
language sql
stable
set search_path = ''
as $$
  select p_flow_slug,
         st.run_id,
         st.step_slug,
         case
           when s.step_type = 'map' and s.deps_count = 0 then r.input -> st.task_index
           when s.step_type = 'map' then (
             select ps.output -> st.task_index
               from pgflow.deps d
               join pgflow.step_states ps on ps.run_id = st.run_id and ps.step_slug = d.dep_slug
              where d.flow_slug = p_flow_slug and d.step_slug = st.step_slug)
           when s.deps_count = 0 then '{}'::jsonb
           else pgflow._step_input(st.run_id, p_flow_slug, st.step_slug)
         end,
         st.message_id,
         st.task_index,
         case when s.step_type = 'single' and s.deps_count = 0 then r.input else null end
    from unnest(p_run_ids, p_step_slugs, p_task_indexes, p_msg_ids) as st(run_id, step_slug, task_index, message_id)
    join pgflow.runs r on r.run_id = st.run_id
    join pgflow.steps s on s.flow_slug = p_flow_slug and s.step_slug = st.step_slug
   order by st.message_id;
$$;
