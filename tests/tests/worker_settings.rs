//! The database rules a step's settings: a `test_worker` process takes each task's handler
//! timeout and retry delay from what SQL returns with the task, so an UPDATE of
//! `pgflow.steps` applies while the worker runs, without a restart; and handlers see their
//! attempt number in `TaskContext`. The `dbsettings` flow is defined in Rust with a 60 s
//! timeout and a 1 s base delay; the tests change those rows after the worker has started.

use crate::worker_support;

use std::time::Duration;

use pgflow::Client;
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use uuid::Uuid;
use worker_support::{count, wait_until, WorkerProc};

async fn set_step_option(db: &TestDb, step: &str, column: &str, value: i32) {
    sqlx::query(&format!(
        "update pgflow.steps set {column} = $1 where flow_slug = 'dbsettings' and step_slug = $2"
    ))
    .bind(value)
    .bind(step)
    .execute(db.pool())
    .await
    .unwrap();
}

async fn task(
    db: &TestDb,
    run_id: Uuid,
    step: &str,
) -> (String, i32, Option<String>, Option<Value>) {
    sqlx::query_as(
        "select status, attempts_count, error_message, output from pgflow.step_tasks
          where run_id = $1 and step_slug = $2",
    )
    .bind(run_id)
    .bind(step)
    .fetch_one(db.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_cancels_a_handler_at_the_timeout_the_database_has_now() {
    let db = TestDb::new().await;
    let _worker = WorkerProc::spawn(db.url(), &["--flow", "dbsettings"]);
    // The worker is running with the Rust definition's 60 s timeout; `slow` sleeps 10 s.
    set_step_option(&db, "slow", "opt_timeout", 3).await;
    let run = Client::new(db.pool().clone())
        .start_flow("dbsettings", &json!({}))
        .await
        .unwrap();
    let sql = format!(
        "select count(*) from pgflow.step_tasks
          where run_id = '{}' and step_slug = 'slow' and status in ('failed', 'completed')",
        run.run_id()
    );
    wait_until(
        "slow's only attempt to end",
        Duration::from_secs(60),
        || {
            let pool = db.pool().clone();
            let sql = sql.clone();
            async move { count(&pool, &sql).await == 1 }
        },
    )
    .await;
    let (status, attempts, error, _) = task(&db, run.run_id(), "slow").await;
    assert_eq!(status, "failed", "the handler ran to its end: {error:?}");
    assert_eq!(attempts, 1);
    assert_eq!(
        error.as_deref(),
        Some("handler timed out: exceeded the step timeout of 3s and was cancelled")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_uses_the_database_retry_delay_and_tells_handlers_their_attempt() {
    let db = TestDb::new().await;
    // Long-polling, so the read_with_poll + start_worker_tasks path is the one tested here
    // (the LISTEN + claim_tasks path serves the test above).
    let _worker = WorkerProc::spawn(db.url(), &["--flow", "dbsettings", "--no-listen"]);
    // The Rust definition's base delay is 1 s (a 2 s wait after the first attempt).
    set_step_option(&db, "delayed", "opt_base_delay", 100).await;
    let run = Client::new(db.pool().clone())
        .start_flow("dbsettings", &json!({}))
        .await
        .unwrap();
    let run_id = run.run_id();
    let sql = format!(
        "select count(*) from pgflow.step_tasks
          where run_id = '{run_id}' and ((step_slug = 'second' and status = 'completed')
             or (step_slug = 'delayed' and status = 'queued' and attempts_count = 1))"
    );
    wait_until(
        "second to complete and delayed to wait for its retry",
        Duration::from_secs(60),
        || {
            let pool = db.pool().clone();
            let sql = sql.clone();
            async move { count(&pool, &sql).await == 2 }
        },
    )
    .await;

    // The handler saw its attempt number: the second attempt returns 2.
    let (_, attempts, _, output) = task(&db, run_id, "second").await;
    assert_eq!((attempts, output), (2, Some(json!(2))));

    // fail_task hid the message for calculate_retry_delay(100, 1) = 200 s, not 2 s.
    let (_, _, error, _) = task(&db, run_id, "delayed").await;
    assert_eq!(
        error.as_deref(),
        Some("handler returned an error: delayed: always fails")
    );
    let hidden_for: f64 = sqlx::query_scalar(
        "select extract(epoch from q.vt - now())::float8
           from pgmq.q_dbsettings q
           join pgflow.step_tasks t on t.message_id = q.msg_id
          where t.run_id = $1 and t.step_slug = 'delayed'",
    )
    .bind(run_id)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(
        (150.0..=200.0).contains(&hidden_for),
        "delayed's message is hidden for {hidden_for} s; calculate_retry_delay(100, 1) is 200 s"
    );
}
