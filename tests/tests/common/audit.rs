//! The completion audit: triggers on the pgflow tables themselves that log every transition
//! of a task, a step state or a run to `completed` into `public.completion_audit`, so nothing
//! in pgflow can record a completion without it showing up. Shared by the SQL tests (through
//! `common`) and the reliability tests (through `reliability_support`).

use sqlx::PgPool;

/// Installs `public.completion_audit` and its triggers.
pub async fn install_completion_audit(pool: &PgPool) {
    sqlx::raw_sql(
        r#"
        create table public.completion_audit (
          kind text not null,              -- 'task', 'step' or 'run'
          run_id uuid not null,
          step_slug text,                  -- null for a run
          task_index int,
          output jsonb,
          at timestamptz not null default clock_timestamp()
        );
        -- Fields are read through to_jsonb: a run row has no step_slug or task_index.
        create function public.audit_completion() returns trigger language plpgsql as $$
        begin
          if new.status = 'completed' and old.status is distinct from 'completed' then
            insert into public.completion_audit (kind, run_id, step_slug, task_index, output)
            values (tg_argv[0], new.run_id, to_jsonb(new) ->> 'step_slug',
                    (to_jsonb(new) ->> 'task_index')::int, new.output);
          end if;
          return new;
        end $$;
        create trigger audit_task_completion after update on pgflow.step_tasks
          for each row execute function public.audit_completion('task');
        create trigger audit_step_completion after update on pgflow.step_states
          for each row execute function public.audit_completion('step');
        create trigger audit_run_completion after update on pgflow.runs
          for each row execute function public.audit_completion('run');
        "#,
    )
    .execute(pool)
    .await
    .expect("install completion audit");
}

/// Completions of `kind` ('task', 'step', 'run') the audit logged for `run`.
pub async fn audited(pool: &PgPool, kind: &str, run: uuid::Uuid) -> i64 {
    sqlx::query_scalar(
        "select count(*) from public.completion_audit where kind = $1 and run_id = $2",
    )
    .bind(kind)
    .bind(run)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Completed runs whose completion the audit logged other than exactly once, plus runs the
/// audit logged as completed that are not completed now.
pub async fn runs_not_completed_exactly_once(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pgflow.runs r
          where (r.status = 'completed') <> ((select count(*) from public.completion_audit a
                                              where a.kind = 'run' and a.run_id = r.run_id) = 1)
             or (select count(*) from public.completion_audit a
                  where a.kind = 'run' and a.run_id = r.run_id) > 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}
