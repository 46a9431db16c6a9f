//! Shared pieces of the reliability tests (tests/tests/reliability_*.rs): a
//! mix of runs with known outputs, an audit trigger that records every
//! transition to `completed`, the end-of-run consistency check, and the
//! disturbances (idle transactions, a worker fleet under churn).
#![allow(dead_code)]

pub use crate::common::audit;
pub mod proxy;

pub use audit::install_completion_audit;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::worker_support::{count, wait_until, WorkerProc};

/// Flows the mix uses; every test worker serves all of them.
pub const MIX_FLOWS: [&str; 3] = ["bigmap", "diamond", "chain"];

/// `test_worker` flags serving the mix with fast heartbeats and sweeps.
pub fn mix_worker_args() -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    for flow in MIX_FLOWS {
        args.push("--flow".into());
        args.push(flow.into());
    }
    for (flag, value) in [
        ("--concurrency", "10"),
        ("--batch", "10"),
        ("--heartbeat-ms", "500"),
        ("--sweep-ms", "500"),
        ("--max-poll-seconds", "1"),
        ("--grace-ms", "5000"),
    ] {
        args.push(flag.into());
        args.push(value.into());
    }
    args
}

/// Spawns a `test_worker` off the async runtime (spawning blocks until the
/// worker prints READY).
pub async fn spawn_worker(url: &str, args: &[String]) -> WorkerProc {
    let url = url.to_string();
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        WorkerProc::spawn(&url, &refs)
    })
    .await
    .expect("spawn worker")
}

/// The size of a mix: one `bigmap` run over `map_len` elements, `diamonds`
/// diamond runs and `chains` chain runs (each with a step that fails once).
#[derive(Debug, Clone, Copy)]
pub struct MixSize {
    pub map_len: i64,
    pub diamonds: i64,
    pub chains: i64,
}

/// Started runs and the output each must end with.
#[derive(Debug, Clone)]
pub struct Mix {
    pub runs: Vec<(Uuid, Value)>,
    pub tasks: i64,
}

/// Makes the sweeper treat a worker as dead after 2 s without heartbeats
/// (default 15 s).
pub async fn fast_dead_worker_detection(pool: &PgPool) {
    sqlx::query("update pgflow.config set dead_worker_after = '2 seconds'")
        .execute(pool)
        .await
        .unwrap();
}

/// Starts the mix's runs (the flows must exist: start a worker first).
pub async fn start_mix(pool: &PgPool, size: MixSize) -> Mix {
    let mut runs = Vec::new();
    let input: Vec<i64> = (0..size.map_len).collect();
    let run_id: Uuid = sqlx::query_scalar("select run_id from pgflow.start_flow('bigmap', $1)")
        .bind(json!(input))
        .fetch_one(pool)
        .await
        .unwrap();
    runs.push((run_id, json!({"total": 2 * input.iter().sum::<i64>()})));
    let diamonds: Vec<(Uuid, i64)> = sqlx::query_as(
        "select r.run_id, g::bigint from generate_series(1, $1) g
           cross join lateral pgflow.start_flow('diamond', jsonb_build_object('n', g)) r",
    )
    .bind(size.diamonds)
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, n) in diamonds {
        runs.push((id, json!({"d": 5 * (n + 1)})));
    }
    let chains: Vec<(Uuid, i64)> = sqlx::query_as(
        "select r.run_id, g::bigint from generate_series(1, $1) g
           cross join lateral pgflow.start_flow('chain', jsonb_build_object('n', g)) r",
    )
    .bind(size.chains)
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, n) in chains {
        runs.push((id, json!({"last": 10 * (n + 1) + 1})));
    }
    Mix {
        runs,
        tasks: size.map_len + 1 + 4 * size.diamonds + 3 * size.chains,
    }
}

/// Completed tasks so far (-1 while the database is unreachable).
pub async fn completed_tasks(pool: &PgPool) -> i64 {
    count(
        pool,
        "select count(*) from pgflow.step_tasks where status = 'completed'",
    )
    .await
}

/// Runs not completed yet (-1 while the database is unreachable).
pub async fn unfinished_runs(pool: &PgPool) -> i64 {
    count(
        pool,
        "select count(*) from pgflow.runs where status <> 'completed'",
    )
    .await
}

/// Waits until every run of the database has completed.
pub async fn wait_all_completed(pool: &PgPool, timeout: Duration) {
    let p = pool.clone();
    let started = Instant::now();
    wait_until("every run to complete", timeout, || {
        let p = p.clone();
        async move { unfinished_runs(&p).await == 0 }
    })
    .await;
    eprintln!("all runs completed {:?} after waiting", started.elapsed());
}

/// Recovery statistics printed by the tests.
#[derive(Debug)]
pub struct Stats {
    pub requeues: i64,
    pub retried_tasks: i64,
    pub max_attempts: i64,
}

/// The end-of-run check: every run completed with its expected output, every
/// counter agrees with the tasks, each task and step completed exactly once
/// (audit), no live message is left, nothing is parked.
pub async fn check_mix(pool: &PgPool, mix: &Mix) -> Stats {
    for (run_id, expected) in &mix.runs {
        let (status, output): (String, Option<Value>) =
            sqlx::query_as("select status, output from pgflow.runs where run_id = $1")
                .bind(run_id)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(status, "completed", "run {run_id}");
        assert_eq!(output.as_ref(), Some(expected), "output of run {run_id}");
    }
    let checks: [(&str, &str); 13] = [
        (
            "runs not completed or with remaining_steps <> 0",
            "select count(*) from pgflow.runs where status <> 'completed' or remaining_steps <> 0",
        ),
        (
            "step states not completed or with counters <> 0",
            "select count(*) from pgflow.step_states
              where status <> 'completed' or remaining_tasks is distinct from 0
                 or remaining_deps <> 0",
        ),
        (
            "tasks not completed, never attempted, without output, or parked",
            "select count(*) from pgflow.step_tasks
              where status <> 'completed' or attempts_count < 1 or output is null
                 or completed_at is null or permanently_stalled_at is not null",
        ),
        (
            "step states whose task count differs from initial_tasks",
            "select count(*) from pgflow.step_states ss
              where ss.initial_tasks is distinct from (select count(*) from pgflow.step_tasks t
                     where t.run_id = ss.run_id and t.step_slug = ss.step_slug)",
        ),
        (
            "map tasks with a wrong output",
            "select count(*) from pgflow.step_tasks t join pgflow.runs r using (run_id)
              where t.step_slug = 'double'
                and t.output <> to_jsonb((r.input ->> t.task_index)::bigint * 2)",
        ),
        (
            "map step outputs that differ from their tasks' outputs",
            "select count(*) from pgflow.step_states ss
              where ss.step_slug = 'double' and ss.output is distinct from
                    (select jsonb_agg(t.output order by t.task_index) from pgflow.step_tasks t
                      where t.run_id = ss.run_id and t.step_slug = ss.step_slug)",
        ),
        (
            "single step outputs that differ from their task's output",
            "select count(*) from pgflow.step_states ss join pgflow.step_tasks t using (run_id, step_slug)
              where ss.step_slug <> 'double' and ss.output is distinct from t.output",
        ),
        (
            "tasks whose completion was recorded other than exactly once",
            "select count(*) from pgflow.step_tasks t
              where (select count(*) from public.completion_audit a
                      where a.kind = 'task' and a.run_id = t.run_id
                        and a.step_slug = t.step_slug and a.task_index = t.task_index) <> 1",
        ),
        (
            "step states whose completion was recorded other than exactly once",
            "select count(*) from pgflow.step_states ss
              where (select count(*) from public.completion_audit a
                      where a.kind = 'step' and a.run_id = ss.run_id
                        and a.step_slug = ss.step_slug) <> 1",
        ),
        (
            "recorded task outputs that differ from the final ones",
            "select count(*) from public.completion_audit a join pgflow.step_tasks t
                using (run_id, step_slug, task_index)
              where a.kind = 'task' and a.output is distinct from t.output",
        ),
        (
            "runs whose completion was recorded other than exactly once",
            "select count(*) from pgflow.runs r
              where (select count(*) from public.completion_audit a
                      where a.kind = 'run' and a.run_id = r.run_id) <> 1",
        ),
        (
            "live queue messages",
            "select (select count(*) from pgmq.q_bigmap) + (select count(*) from pgmq.q_diamond)
                  + (select count(*) from pgmq.q_chain)",
        ),
        (
            "chain tasks of the flaky step that never failed an attempt",
            "select count(*) from pgflow.step_tasks
              where step_slug = 'flaky' and attempts_count < 2",
        ),
    ];
    for (what, sql) in checks {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(n, 0, "{what}: {n}");
    }
    let tasks: i64 = sqlx::query_scalar("select count(*) from pgflow.step_tasks")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(tasks, mix.tasks, "task count");
    let (requeues, retried_tasks, max_attempts): (i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(requeued_count), 0)::bigint,
                count(*) filter (where attempts_count > 1),
                coalesce(max(attempts_count), 0)::bigint
           from pgflow.step_tasks",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    Stats {
        requeues,
        retried_tasks,
        max_attempts,
    }
}

/// A session that sits idle inside a transaction holding a snapshot (and a
/// `FOR KEY SHARE` lock on the flows, like a long report query would), for
/// as long as it lives. Returns the connection; drop it to end the
/// transaction.
pub async fn idle_in_transaction(url: &str) -> PgConnection {
    let mut conn = PgConnection::connect(url)
        .await
        .expect("connect idle session");
    sqlx::raw_sql(
        "set application_name = 'pgflow-test-idle';
         begin isolation level repeatable read;
         select count(*) from pgflow.runs;
         select flow_slug from pgflow.flows for key share;",
    )
    .execute(&mut conn)
    .await
    .expect("open idle transaction");
    conn
}

/// Asserts the idle session is still idle in its transaction (nobody
/// terminated it and it did not finish).
pub async fn assert_still_idle_in_transaction(pool: &PgPool) {
    let n = count(
        pool,
        "select count(*) from pg_stat_activity
          where datname = current_database() and application_name = 'pgflow-test-idle'
            and state = 'idle in transaction'",
    )
    .await;
    assert_eq!(n, 1, "the idle transaction is gone");
}

/// A small pool for the test's own queries, marked so that fault injection
/// never hits it.
pub async fn driver_pool(url: &str) -> PgPool {
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .application_name("pgflow-test-driver");
    PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .unwrap()
}

/// Every worker process is still alive (faults must not kill workers).
pub fn assert_workers_alive(workers: &mut [WorkerProc]) {
    for w in workers {
        assert!(
            w.is_running(),
            "a worker process died; log:\n{}",
            w.log_text()
        );
    }
}

/// Lines of the workers' logs containing `needle`.
pub fn log_lines_with(workers: &[WorkerProc], needle: &str) -> usize {
    workers
        .iter()
        .map(|w| w.log_text().lines().filter(|l| l.contains(needle)).count())
        .sum()
}
