-- replaceable
-- pgflow.get_run_with_states: a run and all its step states as one JSON document,
-- {"run": <runs row>, "steps": [<step_states rows>]}; steps is [] for a flow without steps;
-- NULL for an unknown run. SECURITY DEFINER so clients may read runs without table grants.
create or replace function pgflow.get_run_with_states(run_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
           'run', to_jsonb(r),
           'steps', coalesce((select jsonb_agg(to_jsonb(ss) order by ss.step_slug)
                                from pgflow.step_states ss where ss.run_id = r.run_id), '[]'::jsonb))
    from pgflow.runs r
   where r.run_id = get_run_with_states.run_id;
$$;
