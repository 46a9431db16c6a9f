//! Worker end to end under failure: killed workers, graceful shutdown, and a
//! database that goes away mid-run.

use crate::worker_support;

use std::time::Duration;

use pgflow::{Client, RunHandle};
use pgflow_pgtemp::TempCluster;
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;
use worker_support::{count, wait_terminal, wait_until, WorkerProc};

/// Makes the sweeper treat a worker as dead after 2 s without heartbeats
/// (default 15 s), so crash recovery is quick in tests.
async fn fast_dead_worker_detection(db: &TestDb) {
    sqlx::query("update pgflow.config set dead_worker_after = '2 seconds'")
        .execute(db.pool())
        .await
        .unwrap();
}

async fn started_by(pool: &sqlx::PgPool, worker_id: Uuid) -> i64 {
    count(
        pool,
        &format!("select count(*) from pgflow.step_tasks where status = 'started' and last_worker_id = '{worker_id}'"),
    )
    .await
}

/// Spawns a worker process with `args`, starts a `bigmap` run over `0..n`
/// and waits until that worker holds `busy` started tasks.
async fn bigmap_with_busy_worker(
    db: &TestDb,
    args: &[&str],
    n: i64,
    busy: i64,
) -> (WorkerProc, Uuid, RunHandle) {
    let worker = WorkerProc::spawn(db.url(), args);
    let worker_id = worker.worker_ids[0];
    let input: Vec<i64> = (0..n).collect();
    let run = Client::new(db.pool().clone())
        .start_flow("bigmap", &input)
        .await
        .unwrap();
    let pool = db.pool().clone();
    wait_until(
        &format!("the worker to hold {busy} started tasks"),
        Duration::from_secs(30),
        || {
            let pool = pool.clone();
            async move { started_by(&pool, worker_id).await >= busy }
        },
    )
    .await;
    (worker, worker_id, run)
}

fn sum_doubled(n: i64) -> Value {
    json!({"total": 2 * (0..n).sum::<i64>()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_tasks_are_requeued_and_the_run_completes() {
    killed_worker_tasks_are_requeued(&[]).await;
}

/// The long-polling path (`listen = false`: read_with_poll + start_tasks) recovers the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_long_polling_worker_tasks_are_requeued_and_the_run_completes() {
    killed_worker_tasks_are_requeued(&["--no-listen"]).await;
}

async fn killed_worker_tasks_are_requeued(extra: &[&str]) {
    let db = TestDb::new().await;
    fast_dead_worker_detection(&db).await;
    let mut args = vec![
        "--flow",
        "bigmap",
        "--task-ms",
        "300",
        "--concurrency",
        "10",
    ];
    args.extend_from_slice(extra);
    let n = 200;
    let (mut victim, victim_id, run) = bigmap_with_busy_worker(&db, &args, n, 10).await;
    victim.sigkill();
    let orphaned = started_by(db.pool(), victim_id).await;
    assert!(orphaned > 0);

    let _rescuers: Vec<WorkerProc> = (0..2).map(|_| WorkerProc::spawn(db.url(), &args)).collect();
    let status = wait_terminal(db.pool(), run.run_id(), Duration::from_secs(90)).await;
    assert_eq!(status, "completed");
    let out: Value = run.wait().await.unwrap();
    assert_eq!(out, sum_doubled(n));

    let not_done = count(
        db.pool(),
        "select count(*) from pgflow.step_tasks where step_slug = 'double' and status <> 'completed'",
    )
    .await;
    assert_eq!(not_done, 0);
    let requeued = count(
        db.pool(),
        "select count(*) from pgflow.step_tasks where requeued_count > 0",
    )
    .await;
    assert!(
        requeued >= orphaned,
        "{orphaned} tasks were orphaned but only {requeued} were requeued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_tasks_finish_and_marks_the_worker_stopped() {
    let db = TestDb::new().await;
    let args = [
        "--flow",
        "bigmap",
        "--task-ms",
        "1500",
        "--concurrency",
        "5",
        "--batch",
        "5",
    ];
    let n = 30;
    let (mut first, first_id, run) = bigmap_with_busy_worker(&db, &args, n, 5).await;
    first.sigterm();
    let exit = first.wait_exit(Duration::from_secs(20)).await;
    assert!(
        exit.success(),
        "worker exited with {exit:?}; log:\n{}",
        first.log_text()
    );

    // Nothing it started was left behind: every task it claimed completed.
    assert_eq!(started_by(db.pool(), first_id).await, 0);
    let finished_by_first = count(
        db.pool(),
        &format!("select count(*) from pgflow.step_tasks where status = 'completed' and last_worker_id = '{first_id}'"),
    )
    .await;
    assert!(
        finished_by_first >= 5,
        "only {finished_by_first} tasks finished"
    );
    let stopped = count(
        db.pool(),
        &format!("select count(*) from pgflow.workers where worker_id = '{first_id}' and stopped_at is not null"),
    )
    .await;
    assert_eq!(stopped, 1, "worker row has no stopped_at");

    // A second worker finishes the run; no task ran twice.
    let _second = WorkerProc::spawn(
        db.url(),
        &["--flow", "bigmap", "--concurrency", "30", "--batch", "30"],
    );
    let status = wait_terminal(db.pool(), run.run_id(), Duration::from_secs(60)).await;
    assert_eq!(status, "completed");
    assert_eq!(run.wait::<Value>().await.unwrap(), sum_doubled(n));
    let rerun = count(
        db.pool(),
        "select count(*) from pgflow.step_tasks where attempts_count <> 1 or requeued_count <> 0",
    )
    .await;
    assert_eq!(rerun, 0, "some task ran more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reconnect_after_postgres_restarts() {
    workers_reconnect_after_a_restart(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_workers_reconnect_after_postgres_restarts() {
    workers_reconnect_after_a_restart(&["--no-listen"]).await;
}

async fn workers_reconnect_after_a_restart(extra: &[&str]) {
    // A cluster of its own: stopping the shared one would break other tests.
    let cluster = tokio::task::spawn_blocking(TempCluster::start)
        .await
        .unwrap()
        .expect("temp cluster");
    let url = cluster.url("postgres");
    pgflow::db::install::install(&url).await.expect("install");
    let mut args = vec![
        "--flow",
        "bigmap",
        "--task-ms",
        "100",
        "--concurrency",
        "10",
    ];
    args.extend_from_slice(extra);
    let mut workers: Vec<WorkerProc> = (0..2).map(|_| WorkerProc::spawn(&url, &args)).collect();
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&url)
        .await
        .unwrap();
    let n = 600;
    let input: Vec<i64> = (0..n).collect();
    let run = Client::new(pool.clone())
        .start_flow("bigmap", &input)
        .await
        .unwrap();

    let p = pool.clone();
    wait_until("some tasks to complete", Duration::from_secs(30), || {
        let p = p.clone();
        async move {
            count(
                &p,
                "select count(*) from pgflow.step_tasks where status = 'completed'",
            )
            .await
                >= 50
        }
    })
    .await;
    let before = count(
        &pool,
        "select count(*) from pgflow.step_tasks where status = 'completed'",
    )
    .await;
    assert!(
        before < n,
        "the run finished before the outage; make the tasks slower"
    );
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_fast().expect("stop postgres");
        // The outage itself: workers see refused connections meanwhile.
        std::thread::sleep(Duration::from_secs(3));
        cluster.start_again().expect("start postgres");
        cluster
    })
    .await
    .unwrap();

    let status = wait_terminal(&pool, run.run_id(), Duration::from_secs(90)).await;
    assert_eq!(status, "completed");
    assert_eq!(run.wait::<Value>().await.unwrap(), sum_doubled(n));
    let not_done = count(
        &pool,
        "select count(*) from pgflow.step_tasks where step_slug = 'double' and status <> 'completed'",
    )
    .await;
    assert_eq!(not_done, 0);
    for w in &mut workers {
        assert!(
            w.is_running(),
            "a worker died during the outage; log:\n{}",
            w.log_text()
        );
    }
    drop(workers);
    drop(cluster);
}
