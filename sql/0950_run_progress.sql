-- replaceable
-- View pgflow.run_progress: one row per run for people at a psql prompt: flow, status, steps
-- done (completed or skipped) of total, tasks completed of created, percent, start, duration
-- (so far, for a started run). Plain SQL over runs, step_states and step_tasks.
create or replace view pgflow.run_progress as
select r.run_id,
       r.flow_slug,
       r.status,
       s.steps_done,
       s.steps_total,
       coalesce(t.tasks_done, 0) as tasks_done,
       coalesce(t.tasks_total, 0) as tasks_total,
       case when s.steps_total = 0 then 100.0
            else round(100.0 * s.steps_done / s.steps_total, 1) end as percent,
       r.started_at,
       coalesce(r.completed_at, r.failed_at, r.cancelled_at, now()) - r.started_at as duration
  from pgflow.runs r
  cross join lateral (
    select count(*) filter (where ss.status in ('completed', 'skipped'))::int as steps_done,
           count(*)::int as steps_total
      from pgflow.step_states ss where ss.run_id = r.run_id
  ) s
  left join lateral (
    select count(*) filter (where st.status = 'completed')::int as tasks_done,
           count(*)::int as tasks_total
      from pgflow.step_tasks st where st.run_id = r.run_id
  ) t on true;
