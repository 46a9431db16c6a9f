//! Recovery time and late reports: how long a SIGKILLed worker's tasks take
//! to run again elsewhere (measured and printed), what a frozen worker's late
//! reports do once it wakes up, and how long tasks stay stranded when the
//! reply to a claim (`claim_tasks`) is lost.

use crate::reliability_support;
use crate::worker_support;

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use pgflow_tests::TestDb;
use reliability_support::proxy::{FaultPlan, FaultProxy};
use reliability_support::{
    audit, fast_dead_worker_detection, install_completion_audit, spawn_worker,
};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use worker_support::{count, wait_terminal, wait_until};

/// `bigmap`'s step timeout (tests/src/bin/test_worker.rs).
const STEP_TIMEOUT_SECS: f64 = 5.0;

fn slow_map_args(task_ms: u64) -> Vec<String> {
    [
        "--flow",
        "bigmap",
        "--task-ms",
        &task_ms.to_string(),
        "--concurrency",
        "5",
        "--batch",
        "5",
        "--heartbeat-ms",
        "500",
        "--sweep-ms",
        "500",
        "--max-poll-seconds",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn started_by(pool: &PgPool, worker_id: Uuid) -> i64 {
    count(
        pool,
        &format!("select count(*) from pgflow.step_tasks where status = 'started' and last_worker_id = '{worker_id}'"),
    )
    .await
}

async fn wait_started_by(pool: &PgPool, worker_id: Uuid, n: i64) {
    let p = pool.clone();
    wait_until(
        &format!("worker {worker_id} to hold {n} started tasks"),
        Duration::from_secs(30),
        || {
            let p = p.clone();
            async move { started_by(&p, worker_id).await >= n }
        },
    )
    .await;
}

async fn start_map(pool: &PgPool, n: i64) -> Uuid {
    let input: Vec<i64> = (0..n).collect();
    sqlx::query_scalar("select run_id from pgflow.start_flow('bigmap', $1)")
        .bind(json!(input))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_tasks_are_requeued_by_the_dead_worker_rule_and_run_again() {
    let db = TestDb::new().await;
    fast_dead_worker_detection(db.pool()).await;
    install_completion_audit(db.pool()).await;
    let args = slow_map_args(3000);
    let mut victim = spawn_worker(db.url(), &args).await;
    let victim_id = victim.worker_ids[0];
    let run_id = start_map(db.pool(), 5).await;
    wait_started_by(db.pool(), victim_id, 5).await;
    // The rescuer idles meanwhile: every message is invisible while claimed.
    let rescuer = spawn_worker(db.url(), &args).await;
    victim.sigkill();
    let killed_at: String = sqlx::query_scalar("select clock_timestamp()::text")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let first_started_at: String = sqlx::query_scalar(
        "select min(started_at)::text from pgflow.step_tasks where run_id = $1 and step_slug = 'double'",
    )
    .bind(run_id)
    .fetch_one(db.pool())
    .await
    .unwrap();

    let status = wait_terminal(db.pool(), run_id, Duration::from_secs(60)).await;
    assert_eq!(status, "completed");
    // Per task: kill -> requeued (sweep), kill -> started again elsewhere.
    let rows: Vec<(i32, f64, f64, Uuid)> = sqlx::query_as(
        "select task_index,
                extract(epoch from last_requeued_at - $2::timestamptz)::float8,
                extract(epoch from started_at - $2::timestamptz)::float8,
                last_worker_id
           from pgflow.step_tasks
          where run_id = $1 and step_slug = 'double' order by task_index",
    )
    .bind(run_id)
    .bind(killed_at)
    .fetch_all(db.pool())
    .await
    .unwrap();
    let requeue_secs: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let restart_secs: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let worst = restart_secs.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "recovery after SIGKILL (dead_worker_after 2 s, heartbeat 0.5 s, sweep 0.5 s, \
         step timeout {STEP_TIMEOUT_SECS} s): requeued after {requeue_secs:.2?} s, \
         running again after {restart_secs:.2?} s (worst {worst:.2} s)"
    );
    assert_eq!(rows.len(), 5);
    for (index, _, _, worker) in &rows {
        assert_eq!(
            *worker, rescuer.worker_ids[0],
            "task {index} was not re-run by the rescuer"
        );
    }
    // Ordering, not timing: every task was requeued once, by the dead-worker rule (after the
    // victim's last heartbeat + dead_worker_after) and before the step-timeout rule could have
    // applied to any of them (first start + step timeout + 30 s), then started again.
    let (by_dead_worker_rule, restarted_after_requeue): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where t.requeued_count = 1 and t.attempts_count = 2
                                   and t.last_requeued_at >= w.last_heartbeat_at + interval '2 seconds'
                                   and t.last_requeued_at < $3::timestamptz + make_interval(secs => $4 + 30)),
                count(*) filter (where t.started_at > t.last_requeued_at)
           from pgflow.step_tasks t, pgflow.workers w
          where t.run_id = $1 and t.step_slug = 'double' and w.worker_id = $2",
    )
    .bind(run_id)
    .bind(victim_id)
    .bind(&first_started_at)
    .bind(STEP_TIMEOUT_SECS)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(
        by_dead_worker_rule, 5,
        "tasks not requeued by the dead-worker rule"
    );
    assert_eq!(restarted_after_requeue, 5);
    assert_eq!(audit::runs_not_completed_exactly_once(db.pool()).await, 0);
    assert_eq!(
        audit::audited(db.pool(), "task", run_id).await,
        6,
        "5 map tasks + the sum"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_worker_that_wakes_up_late_changes_nothing() {
    let db = TestDb::new().await;
    fast_dead_worker_detection(db.pool()).await;
    install_completion_audit(db.pool()).await;
    let mut args = slow_map_args(1500);
    args.extend(["--grace-ms".to_string(), "10000".to_string()]);
    let mut victim = spawn_worker(db.url(), &args).await;
    let victim_id = victim.worker_ids[0];
    let run_id = start_map(db.pool(), 5).await;
    wait_started_by(db.pool(), victim_id, 5).await;
    // Frozen: no heartbeats, no reports, but alive and holding its tasks.
    kill(victim.pid(), Signal::SIGSTOP).unwrap();
    let frozen = Instant::now();
    let rescuer = spawn_worker(db.url(), &args).await;
    let status = wait_terminal(db.pool(), run_id, Duration::from_secs(60)).await;
    assert_eq!(status, "completed");
    let rescued_in = frozen.elapsed();

    // Wake it up: its handlers finish and it reports all five tasks late,
    // then a SIGTERM makes it drain (so every late report has been sent).
    kill(victim.pid(), Signal::SIGCONT).unwrap();
    victim.sigterm();
    let exit = victim.wait_exit(Duration::from_secs(30)).await;
    assert!(exit.success(), "log:\n{}", victim.log_text());

    let (once, by_rescuer, attempts_2): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where (select count(*) from public.completion_audit a
                                   where a.kind = 'task' and a.run_id = t.run_id
                                     and a.step_slug = t.step_slug
                                     and a.task_index = t.task_index) = 1),
                count(*) filter (where t.last_worker_id = $2),
                count(*) filter (where t.attempts_count = 2 and t.requeued_count = 1)
           from pgflow.step_tasks t where t.run_id = $1 and t.step_slug = 'double'",
    )
    .bind(run_id)
    .bind(rescuer.worker_ids[0])
    .fetch_one(db.pool())
    .await
    .unwrap();
    eprintln!("frozen worker: its 5 tasks were re-run and the run completed {rescued_in:?} after the freeze");
    assert_eq!(once, 5, "a task's completion was recorded other than once");
    assert_eq!(by_rescuer, 5, "the late reports took the tasks over");
    assert_eq!(
        attempts_2, 5,
        "expected one requeue and two attempts per task"
    );
    let output: serde_json::Value =
        sqlx::query_scalar("select output from pgflow.runs where run_id = $1")
            .bind(run_id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(output, json!({"total": 20}));
    let live: i64 = count(db.pool(), "select count(*) from pgmq.q_bigmap").await;
    assert_eq!(live, 0, "live messages left");
}

/// A lost claim reply (the connection is cut after `claim_tasks` committed)
/// must not strand the claimed tasks: the worker retries the same claim (same
/// claim id), which reads nothing new and hands it the tasks it started, so
/// they run as soon as the connection works again, not after the step timeout
/// + 30 s stall sweep. Every retry while faults are on is cut too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claim_reply_strands_tasks_only_briefly() {
    let db = TestDb::new().await;
    fast_dead_worker_detection(db.pool()).await;
    install_completion_audit(db.pool()).await;
    let args = slow_map_args(0);
    // A first worker compiles the flow, then leaves.
    let mut setup = spawn_worker(db.url(), &args).await;
    setup.sigterm();
    setup.wait_exit(Duration::from_secs(30)).await;
    let run_id = start_map(db.pool(), 5).await;

    let parsed = url::Url::parse(db.url()).unwrap();
    let upstream = tokio::net::lookup_host((
        parsed.host_str().unwrap().to_string(),
        parsed.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = FaultProxy::start(
        upstream,
        FaultPlan {
            random_cut_chance: 0.0,
            random_cut_bytes: (1, 1),
            targeted_cut_chance: 0.0,
            claim_cut_chance: 1.0,
        },
    )
    .await;
    proxy.set_faults(true);
    let worker = spawn_worker(&proxy.url_for(db.url()), &args).await;
    let p = db.pool().clone();
    let px = &proxy;
    wait_until("a claim to lose its reply", Duration::from_secs(30), || {
        let _ = &p;
        async move { px.claim_cuts() > 0 }
    })
    .await;
    // Keep cutting until a retry of the claim has lost its reply too.
    wait_until(
        "a retried claim to lose its reply",
        Duration::from_secs(30),
        || {
            let _ = &p;
            async move { px.claim_cuts() > 1 }
        },
    )
    .await;
    proxy.set_faults(false);
    let healed = Instant::now();
    let (cuts, stranded) = (
        proxy.claim_cuts(),
        count(
            db.pool(),
            "select count(*) from pgflow.step_tasks
              where status = 'started' and last_claim_id is not null",
        )
        .await,
    );
    let status = wait_terminal(db.pool(), run_id, Duration::from_secs(90)).await;
    let took = healed.elapsed();
    eprintln!(
        "lost claim replies: {cuts} claims cut, {stranded} tasks started by a lost claim; \
         run completed {took:?} after the connection healed"
    );
    assert_eq!(status, "completed");
    assert_eq!(
        stranded, 5,
        "the first claim should have started all 5 tasks"
    );
    let (runs_once, by_worker): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where attempts_count = 1 and requeued_count = 0),
                count(*) filter (where last_worker_id = $2)
           from pgflow.step_tasks where run_id = $1 and step_slug = 'double'",
    )
    .bind(run_id)
    .bind(worker.worker_ids[0])
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(
        runs_once, 5,
        "a task was requeued instead of handed back by the retried claim"
    );
    assert_eq!(by_worker, 5);
    // No requeue (above) means the stall sweep never had to step in: the retried claim handed
    // the tasks back. How long that took is printed, not asserted.
    assert_eq!(
        audit::audited(db.pool(), "task", run_id).await,
        6,
        "5 map tasks + the sum"
    );
    assert_eq!(audit::runs_not_completed_exactly_once(db.pool()).await, 0);
}
