-- replaceable
-- pgflow._task_records: what a worker is handed for each started task (SPEC §3.4): root
-- single -> input {} and flow_input = the run input; dependent single -> the completed
-- parents' outputs by slug (skipped parents absent); root map -> its element of the run
-- input; dependent map -> its element of the parent's output. Ordered by message id.
-- PL/pgSQL on purpose: the array a map reads from (a run input or a parent output, possibly
-- large and TOASTed) is fetched once per (run, step) into a variable, not once per task.
create or replace function pgflow._task_records(
  p_flow_slug text, p_run_ids uuid[], p_step_slugs text[], p_task_indexes int[], p_msg_ids bigint[]
)
returns setof pgflow.step_task_record
language plpgsql
stable
set search_path = ''
as $$
declare
  v_task record;
  v_key text;
  v_step pgflow.steps;
  v_source jsonb;
  v_run_input jsonb;
  v_rec pgflow.step_task_record;
begin
  for v_task in
    select st.run_id, st.step_slug, st.task_index, st.message_id
      from unnest(p_run_ids, p_step_slugs, p_task_indexes, p_msg_ids) as st(run_id, step_slug, task_index, message_id)
     order by st.message_id
  loop
    if v_key is distinct from v_task.run_id::text || '/' || v_task.step_slug then
      v_key := v_task.run_id::text || '/' || v_task.step_slug;
      select * into v_step from pgflow.steps s where s.flow_slug = p_flow_slug and s.step_slug = v_task.step_slug;
      v_source := null;
      v_run_input := null;
      if v_step.deps_count = 0 then
        select r.input into v_run_input from pgflow.runs r where r.run_id = v_task.run_id;
        v_source := v_run_input;
      elsif v_step.step_type = 'map' then
        select ps.output into v_source
          from pgflow.deps d
          join pgflow.step_states ps on ps.run_id = v_task.run_id and ps.step_slug = d.dep_slug
         where d.flow_slug = p_flow_slug and d.step_slug = v_task.step_slug;
      end if;
    end if;

    v_rec.flow_slug := p_flow_slug;
    v_rec.run_id := v_task.run_id;
    v_rec.step_slug := v_task.step_slug;
    v_rec.msg_id := v_task.message_id;
    v_rec.task_index := v_task.task_index;
    if v_step.step_type = 'map' then
      v_rec.input := v_source -> v_task.task_index;
      v_rec.flow_input := null;
    elsif v_step.deps_count = 0 then
      v_rec.input := '{}'::jsonb;
      v_rec.flow_input := v_run_input;
    else
      v_rec.input := pgflow._step_input(v_task.run_id, p_flow_slug, v_task.step_slug);
      v_rec.flow_input := null;
    end if;
    return next v_rec;
  end loop;
end;
$$;
