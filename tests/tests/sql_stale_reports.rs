//! Stale reports, deterministically: a report from attempt N arriving during attempt N+1, and
//! reports racing `cancel_run` and `requeue_stalled_tasks` on another connection. The race is
//! forced, not hoped for: one side holds its transaction open while the test waits until the
//! other side is blocked on its lock (pg_stat_activity), then commits. Every test checks the
//! completion audit: each task, step and run completed at most once, and only as decided.
//!
//! What wins (README "Limits"): the first report for a started task, whichever attempt sent
//! it; nothing is recorded for a task that is not started (requeued, completed, cancelled) or
//! for a run that is no longer started.

use crate::common;

use std::time::{Duration, Instant};

use common::audit::{audited, install_completion_audit, runs_not_completed_exactly_once};
use common::*;
use pgflow_db::api::{self, Completion};
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

async fn setup(steps: &str) -> TestDb {
    let db = TestDb::new().await;
    install_completion_audit(db.pool()).await;
    exec(
        db.pool(),
        &format!("select pgflow.create_flow('stale', max_attempts => 3, base_delay => 0); {steps}"),
    )
    .await;
    db
}

async fn claim(pool: &PgPool, worker: Uuid) -> Vec<Task> {
    make_visible(pool, "stale").await;
    api::claim_tasks(pool, "stale", worker, Uuid::new_v4(), 100, 30)
        .await
        .unwrap()
        .into_iter()
        .map(|claimed| claimed.task)
        .collect()
}

/// Marks `worker` stopped and runs the stall sweep; returns the number requeued.
async fn worker_dies(pool: &PgPool, worker: Uuid) -> i32 {
    api::mark_worker_stopped(pool, worker).await.unwrap();
    sqlx::query_scalar("select pgflow.requeue_stalled_tasks()")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn task_row(
    pool: &PgPool,
    run: Uuid,
    step: &str,
    index: i32,
) -> (String, i32, Option<Value>) {
    sqlx::query_as(
        "select status, attempts_count, output from pgflow.step_tasks
          where run_id = $1 and step_slug = $2 and task_index = $3",
    )
    .bind(run)
    .bind(step)
    .bind(index)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until some backend is blocked on a lock while running a statement containing
/// `needle`. The deadline only turns a hang into a failure.
async fn wait_blocked(pool: &PgPool, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let blocked: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
              where wait_event_type = 'Lock' and query like '%' || $1 || '%'
                and pid <> pg_backend_pid()",
        )
        .bind(needle)
        .fetch_one(pool)
        .await
        .unwrap();
        if blocked > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing blocked on a lock running {needle}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(db: &TestDb) -> PgConnection {
    PgConnection::connect(db.url()).await.unwrap()
}

#[tokio::test]
async fn a_report_from_attempt_n_during_attempt_n_plus_one_wins_and_the_next_is_a_no_op() {
    let db = setup("select pgflow.add_step('stale', 'a')").await;
    let pool = db.pool();
    let run = start(pool, "stale", json!(1)).await;

    // Attempt 1 goes to worker A, which looks dead: the sweep requeues the task.
    let a = worker(pool, "stale").await;
    assert_eq!(claim(pool, a).await.len(), 1);
    assert_eq!(worker_dies(pool, a).await, 1);
    // A's report arrives while the task waits in the queue: it records nothing.
    assert_eq!(
        complete(pool, run, "a", 0, json!("from attempt 1"))
            .await
            .as_deref(),
        Some("queued")
    );
    assert_eq!(audited(pool, "task", run).await, 0);

    // Attempt 2 runs on worker B; A reports again (a retried report) and wins.
    let b = worker(pool, "stale").await;
    assert_eq!(claim(pool, b).await.len(), 1);
    assert_eq!(
        complete(pool, run, "a", 0, json!("from attempt 1"))
            .await
            .as_deref(),
        Some("completed")
    );
    // B's own report is now a duplicate.
    complete(pool, run, "a", 0, json!("from attempt 2")).await;

    assert_eq!(
        task_row(pool, run, "a", 0).await,
        ("completed".into(), 2, Some(json!("from attempt 1")))
    );
    assert_eq!(run_status(pool, run).await, "completed");
    assert_eq!(
        run_output(pool, run).await,
        Some(json!({"a": "from attempt 1"}))
    );
    assert_eq!(audited(pool, "task", run).await, 1);
    assert_eq!(audited(pool, "step", run).await, 1);
    assert_eq!(audited(pool, "run", run).await, 1);
    assert_eq!(live_messages(pool, "stale").await, 0);
}

#[tokio::test]
async fn in_one_batch_the_stale_report_listed_first_wins() {
    let db = setup("select pgflow.add_step('stale', 'm', step_type => 'map')").await;
    let pool = db.pool();
    let run = start(pool, "stale", json!([1, 2])).await;
    let a = worker(pool, "stale").await;
    assert_eq!(claim(pool, a).await.len(), 2);
    assert_eq!(worker_dies(pool, a).await, 2);
    let b = worker(pool, "stale").await;
    assert_eq!(claim(pool, b).await.len(), 2);

    // One batch (e.g. an upstream aggregator) carries both attempts' reports for task 0,
    // the stale one first, and attempt 2's report for task 1.
    let (stale, fresh, other) = (json!("attempt 1"), json!("attempt 2"), json!("t1"));
    let batch = [
        Completion {
            run_id: run,
            step_slug: "m",
            task_index: 0,
            output: &stale,
        },
        Completion {
            run_id: run,
            step_slug: "m",
            task_index: 1,
            output: &other,
        },
        Completion {
            run_id: run,
            step_slug: "m",
            task_index: 0,
            output: &fresh,
        },
    ];
    api::complete_tasks(pool, &batch).await.unwrap();

    assert_eq!(
        run_output(pool, run).await,
        Some(json!({"m": ["attempt 1", "t1"]}))
    );
    assert_eq!(audited(pool, "task", run).await, 2);
    assert_eq!(audited(pool, "step", run).await, 1);
    assert_eq!(runs_not_completed_exactly_once(pool).await, 0);
}

#[tokio::test]
async fn an_oversized_first_report_in_a_batch_is_a_failed_attempt_even_if_a_valid_one_follows() {
    let db = setup("select pgflow.add_step('stale', 'm', step_type => 'map')").await;
    let pool = db.pool();
    exec(pool, "update pgflow.config set max_payload_bytes = 1024").await;
    let pool = &sqlx::PgPool::connect(db.url()).await.unwrap();
    let run = start(pool, "stale", json!([1])).await;
    let w = worker(pool, "stale").await;
    assert_eq!(claim(pool, w).await.len(), 1);

    let (big, ok) = (json!("x".repeat(2000)), json!("ok"));
    let batch = [
        Completion {
            run_id: run,
            step_slug: "m",
            task_index: 0,
            output: &big,
        },
        Completion {
            run_id: run,
            step_slug: "m",
            task_index: 0,
            output: &ok,
        },
    ];
    api::complete_tasks(pool, &batch).await.unwrap();

    // As with two complete_task calls: the first fails the attempt, the second finds the
    // task queued again and records nothing.
    let (status, attempts, output) = task_row(pool, run, "m", 0).await;
    assert_eq!((status.as_str(), attempts, output), ("queued", 1, None));
    assert_eq!(audited(pool, "task", run).await, 0);
    assert_eq!(run_status(pool, run).await, "started");
}

#[tokio::test]
async fn a_report_waiting_behind_cancel_run_records_nothing() {
    let db = setup("select pgflow.add_step('stale', 'a')").await;
    let pool = db.pool();
    let run = start(pool, "stale", json!(1)).await;
    let w = worker(pool, "stale").await;
    assert_eq!(claim(pool, w).await.len(), 1);

    let mut canceller = connect(&db).await;
    let mut tx = canceller.begin().await.unwrap();
    let cancelled: bool = sqlx::query_scalar("select pgflow.cancel_run($1)")
        .bind(run)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(cancelled);
    let report = tokio::spawn({
        let pool = pool.clone();
        async move { complete(&pool, run, "a", 0, json!("late")).await }
    });
    wait_blocked(pool, "complete_task").await;
    tx.commit().await.unwrap();

    assert_eq!(report.await.unwrap().as_deref(), Some("cancelled"));
    assert_eq!(run_status(pool, run).await, "cancelled");
    assert_eq!(
        task_row(pool, run, "a", 0).await,
        ("cancelled".into(), 1, None)
    );
    assert_eq!(audited(pool, "task", run).await, 0);
    assert_eq!(runs_not_completed_exactly_once(pool).await, 0);
    assert_eq!(live_messages(pool, "stale").await, 0);
}

#[tokio::test]
async fn cancel_run_waiting_behind_a_batch_keeps_what_the_batch_recorded() {
    let db = setup("select pgflow.add_step('stale', 'm', step_type => 'map')").await;
    let pool = db.pool();
    let run = start(pool, "stale", json!([1, 2])).await;
    let w = worker(pool, "stale").await;
    assert_eq!(claim(pool, w).await.len(), 2);

    let mut reporter = connect(&db).await;
    let mut tx = reporter.begin().await.unwrap();
    let out = json!("done");
    let batch = [Completion {
        run_id: run,
        step_slug: "m",
        task_index: 0,
        output: &out,
    }];
    api::complete_tasks(&mut *tx, &batch).await.unwrap();
    let cancel = tokio::spawn({
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("select pgflow.cancel_run($1)")
                .bind(run)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    });
    wait_blocked(pool, "cancel_run").await;
    tx.commit().await.unwrap();

    assert!(
        cancel.await.unwrap(),
        "the run was still started when cancel_run got the lock"
    );
    assert_eq!(
        task_row(pool, run, "m", 0).await,
        ("completed".into(), 1, Some(out))
    );
    assert_eq!(
        task_row(pool, run, "m", 1).await,
        ("cancelled".into(), 1, None)
    );
    assert_eq!(step_state(pool, run, "m").await.status, "cancelled");
    assert_eq!(audited(pool, "task", run).await, 1);
    assert_eq!(audited(pool, "step", run).await, 0);
    assert_eq!(runs_not_completed_exactly_once(pool).await, 0);
}

#[tokio::test]
async fn a_report_waiting_behind_the_stall_sweep_records_nothing_and_the_next_attempt_counts() {
    let db = setup("select pgflow.add_step('stale', 'a')").await;
    let pool = db.pool();
    let run = start(pool, "stale", json!(1)).await;
    let a = worker(pool, "stale").await;
    assert_eq!(claim(pool, a).await.len(), 1);
    api::mark_worker_stopped(pool, a).await.unwrap();

    let mut sweeper = connect(&db).await;
    let mut tx = sweeper.begin().await.unwrap();
    let requeued: i32 = sqlx::query_scalar("select pgflow.requeue_stalled_tasks()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(requeued, 1);
    let report = tokio::spawn({
        let pool = pool.clone();
        async move { complete(&pool, run, "a", 0, json!("from the dead worker")).await }
    });
    wait_blocked(pool, "complete_task").await;
    tx.commit().await.unwrap();
    assert_eq!(report.await.unwrap().as_deref(), Some("queued"));
    assert_eq!(audited(pool, "task", run).await, 0);

    let b = worker(pool, "stale").await;
    assert_eq!(claim(pool, b).await.len(), 1);
    complete(pool, run, "a", 0, json!("from attempt 2")).await;
    assert_eq!(
        task_row(pool, run, "a", 0).await,
        ("completed".into(), 2, Some(json!("from attempt 2")))
    );
    assert_eq!(audited(pool, "task", run).await, 1);
    assert_eq!(audited(pool, "run", run).await, 1);
}

#[tokio::test]
async fn the_stall_sweep_passes_over_a_task_whose_report_is_committing() {
    let db = setup("select pgflow.add_step('stale', 'a')").await;
    let pool = db.pool();
    let run = start(pool, "stale", json!(1)).await;
    let a = worker(pool, "stale").await;
    assert_eq!(claim(pool, a).await.len(), 1);
    api::mark_worker_stopped(pool, a).await.unwrap();

    let mut reporter = connect(&db).await;
    let mut tx = reporter.begin().await.unwrap();
    api::complete_task(&mut *tx, run, "a", 0, &json!("made it"))
        .await
        .unwrap();
    // SKIP LOCKED: the sweep does not wait for the report and does not requeue the task.
    let requeued: i32 = sqlx::query_scalar("select pgflow.requeue_stalled_tasks()")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(requeued, 0);
    tx.commit().await.unwrap();

    assert_eq!(worker_dies(pool, a).await, 0);
    assert_eq!(
        task_row(pool, run, "a", 0).await,
        ("completed".into(), 1, Some(json!("made it")))
    );
    assert_eq!(audited(pool, "task", run).await, 1);
    assert_eq!(audited(pool, "run", run).await, 1);
}
