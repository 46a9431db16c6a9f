//! Least privilege: `pgflow.setup_roles()` creates a worker role that can only claim and
//! report tasks, and a read-only role for inspection. Tests log in as each and show what
//! they can and cannot do.

use crate::common;

use common::*;
use pgflow_tests::TestDb;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// Connects as a new login role of this test's own, member of `role` when given.
async fn login_as(db: &TestDb, role: Option<&str>) -> PgPool {
    let user = format!("{}_{}", role.unwrap_or("nobody"), db.name());
    let membership = role.map(|r| format!(" in role {r}")).unwrap_or_default();
    exec(
        db.pool(),
        &format!("do $$ begin if not exists (select 1 from pg_roles where rolname = '{user}') then create role \"{user}\" login password 'pw'{membership}; end if; end $$"),
    )
    .await;
    let mut url = url::Url::parse(db.url()).unwrap();
    url.set_username(&user).unwrap();
    url.set_password(Some("pw")).unwrap();
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url.as_str())
        .await
        .unwrap()
}

async fn denied(pool: &PgPool, sql: &str) {
    let e = expect_error(pool, sql).await;
    assert_eq!(
        e.code, "42501",
        "{sql} should be refused for lack of privilege: {e:?}"
    );
}

/// The functions a worker calls write tables the worker role cannot write, so they must run
/// as their owner. `create or replace function` resets SECURITY DEFINER unless the new
/// definition repeats it, so a later migration could silently drop it: this catches that.
#[tokio::test]
async fn the_worker_functions_run_as_their_owner() {
    let db = TestDb::new().await;
    let invoker: Vec<String> = sqlx::query_scalar(
        "select p.proname::text from pg_proc p
          where p.pronamespace = 'pgflow'::regnamespace and not p.prosecdef
            and p.proname = any(array['start_tasks', 'start_worker_tasks', 'claim_tasks', 'complete_task',
                'complete_tasks', 'fail_task', 'mark_worker_stopped', 'requeue_stalled_tasks', 'set_worker_dead_after',
                'read_with_poll', 'record_task_usage', 'task_attempt',
                '_ensure_flow_compiled_limited', 'postpone_task_retry'])
          order by 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(invoker.is_empty(), "not SECURITY DEFINER: {invoker:?}");
}

#[tokio::test]
async fn worker_role_claims_and_reports_tasks_but_cannot_touch_runs() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(
        admin,
        "select pgflow.setup_roles(); select pgflow.setup_roles();",
    )
    .await;
    exec(admin, "select pgflow.create_flow('priv'); select pgflow.add_step('priv', 'a'); select pgflow.add_step('priv', 'b', array['a']);").await;
    let run = start(admin, "priv", json!({"x": 1})).await;

    let worker_pool = login_as(&db, Some("pgflow_worker")).await;
    let w = worker(&worker_pool, "priv").await;
    exec(
        &worker_pool,
        &format!("update pgflow.workers set last_heartbeat_at = now() where worker_id = '{w}'"),
    )
    .await;
    let tasks = read_and_start(&worker_pool, "priv", w, 10).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        complete(&worker_pool, run, "a", 0, json!(1))
            .await
            .as_deref(),
        Some("completed")
    );
    let tasks = read_and_start(&worker_pool, "priv", w, 10).await;
    assert_eq!(
        fail(&worker_pool, run, &tasks[0].step_slug, 0, "x")
            .await
            .as_deref(),
        Some("queued")
    );
    exec(&worker_pool, "select pgflow.requeue_stalled_tasks()").await;
    exec(
        &worker_pool,
        &format!("select pgflow.mark_worker_stopped('{w}')"),
    )
    .await;
    scalar_text(
        &worker_pool,
        &format!("select input::text from pgflow.runs where run_id = '{run}'"),
    )
    .await;

    denied(&worker_pool, "update pgflow.runs set status = 'completed'").await;
    denied(&worker_pool, "delete from pgflow.step_tasks").await;
    denied(&worker_pool, "select pgflow.start_flow('priv', '{}')").await;
    denied(&worker_pool, &format!("select pgflow.cancel_run('{run}')")).await;
    denied(&worker_pool, "select pgflow.delete_flow_and_data('priv')").await;
    denied(&worker_pool, "update pgflow.workers set stopped_at = null").await;
    assert_eq!(run_status(admin, run).await, "started");
}

/// What `pgflow worker` needs beyond claiming and reporting: a flow's shape, and postponing
/// a requeued task's retry when a server sent `Retry-After` (the role has no pgmq
/// privileges, so through pgflow.postpone_task_retry, which touches only queued tasks'
/// messages and never makes one visible sooner).
#[tokio::test]
async fn worker_role_loads_shapes_and_postpones_queued_retries_only() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('later', base_delay => 0); select pgflow.add_step('later', 'a');",
    )
    .await;
    let run = start(admin, "later", json!({})).await;
    let worker_pool = login_as(&db, Some("pgflow_worker")).await;
    let shape = scalar_json(&worker_pool, "select pgflow._get_flow_shape('later')")
        .await
        .unwrap();
    assert_eq!(shape["steps"][0]["slug"], json!("a"));

    let postpone =
        |secs: i32| format!("select pgflow.postpone_task_retry('{run}', 'a', 0, {secs})::text");
    let w = worker(&worker_pool, "later").await;
    read_and_start(&worker_pool, "later", w, 1).await;
    assert_eq!(
        scalar_text(&worker_pool, &postpone(60)).await.as_deref(),
        Some("false"),
        "a started task's message is not the worker's to postpone"
    );
    assert_eq!(
        fail(&worker_pool, run, "a", 0, "429").await.as_deref(),
        Some("queued")
    );
    assert_eq!(
        scalar_text(&worker_pool, &postpone(60)).await.as_deref(),
        Some("true")
    );
    let hidden_for = |pool| {
        scalar_i64(
            pool,
            "select extract(epoch from vt - clock_timestamp())::bigint from pgmq.q_later",
        )
    };
    assert!(hidden_for(admin).await >= 55);
    assert_eq!(
        scalar_text(&worker_pool, &postpone(1)).await.as_deref(),
        Some("false"),
        "never visible sooner"
    );
    assert!(hidden_for(admin).await >= 55);
    let e = expect_error(&worker_pool, &postpone(-1)).await;
    assert_eq!(e.code, "22023", "{e:?}");
    assert!(
        e.message.contains("delay_seconds must be 0 to 86400"),
        "{e:?}"
    );

    let reader = login_as(&db, Some("pgflow_reader")).await;
    let nobody = login_as(&db, None).await;
    for pool in [&reader, &nobody] {
        denied(pool, &postpone(60)).await;
        denied(pool, "select pgflow._get_flow_shape('later')").await;
    }
}

#[tokio::test]
async fn reader_role_sees_everything_and_changes_nothing() {
    let db = TestDb::new().await;
    let admin = db.pool();
    exec(admin, "select pgflow.setup_roles()").await;
    exec(
        admin,
        "select pgflow.create_flow('ro'); select pgflow.add_step('ro', 'a');",
    )
    .await;
    let run = start(admin, "ro", json!({})).await;

    let reader = login_as(&db, Some("pgflow_reader")).await;
    assert_eq!(
        scalar_i64(&reader, "select count(*) from pgflow.run_progress").await,
        1
    );
    assert_eq!(
        scalar_i64(&reader, "select count(*) from pgflow.active_tasks").await,
        0
    );
    assert_eq!(
        scalar_i64(&reader, "select count(*) from pgflow.step_tasks").await,
        1
    );
    assert_eq!(
        scalar_i64(&reader, "select queue_length from pgmq.metrics('ro')").await,
        1
    );
    let doc = scalar_json(
        &reader,
        &format!("select pgflow.get_run_with_states('{run}')"),
    )
    .await
    .unwrap();
    assert_eq!(doc["run"]["status"], json!("started"));

    denied(
        &reader,
        &format!("select pgflow.complete_task('{run}', 'a', 0, '1')"),
    )
    .await;
    denied(&reader, "select pgflow.start_flow('ro', '{}')").await;
    denied(&reader, "delete from pgflow.runs").await;
    denied(&reader, "select * from pgmq.read('ro', 30, 1)").await;
    assert_eq!(live_messages(admin, "ro").await, 1);
}

#[tokio::test]
async fn nothing_in_the_pgflow_schema_is_open_to_public() {
    let db = TestDb::new().await;
    exec(
        db.pool(),
        "select pgflow.create_flow('pub'); select pgflow.add_step('pub', 'a');",
    )
    .await;
    let nobody = login_as(&db, None).await;
    denied(&nobody, "select * from pgflow.runs").await;
    denied(&nobody, "select pgflow.start_flow('pub', '{}')").await;
}
