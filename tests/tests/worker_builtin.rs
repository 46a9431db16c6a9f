//! Built-in handlers in a Rust worker, next to Rust handlers; `Retry-After`;
//! usage recorded per attempt, with the attempt number, and never counted
//! twice when a worker dies mid-task.

use crate::worker_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use pgflow::db::api;
use pgflow::{
    BuiltinHandler, Client, CompileMode, Resources, StepDef, TaskContext, Usage, Worker,
    WorkerConfig, WorkerFlow,
};
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use worker_support::{count, wait_until};

fn config() -> WorkerConfig {
    WorkerConfig {
        compile_mode: CompileMode::Development,
        heartbeat_interval: Duration::from_millis(300),
        sweep_interval: Some(Duration::from_millis(300)),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerConfig::default()
    }
}

fn usage(model: &str, input: u64, output: u64) -> Usage {
    Usage {
        model: model.into(),
        input_tokens: Some(input),
        output_tokens: Some(output),
        latency: Duration::from_millis(25),
    }
}

async fn wait_output(client: &Client, run: &pgflow::RunHandle) -> Value {
    let _ = client;
    tokio::time::timeout(Duration::from_secs(60), run.wait())
        .await
        .expect("run finished in time")
        .expect("run completed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_steps_run_next_to_rust_steps_and_usage_is_kept_per_attempt() {
    let db = TestDb::new().await;
    let resources = Resources::new().unwrap();
    let render = BuiltinHandler::prepare(
        &json!({"kind": "template", "template": "{{ load.text }} on attempt {{ load.attempt }}"}),
        &resources,
    )
    .unwrap();
    // The Rust step spends tokens on every attempt and fails the first.
    let flow = WorkerFlow::builder("mixed")
        .base_delay(1)
        .step(
            StepDef::single("load"),
            |_input: Value, ctx: TaskContext| async move {
                let attempt = ctx.attempt();
                let recorded = ctx
                    .report_usage(&usage("m-1", 10 * attempt as u64, 5))
                    .await
                    .map_err(|e| e.to_string())?;
                assert!(recorded);
                if attempt == 1 {
                    return Err("first attempt fails".to_string());
                }
                Ok(json!({"text": "hello", "attempt": attempt}))
            },
        )
        .builtin_step(StepDef::single("render").depends_on(["load"]), render)
        .build()
        .unwrap();
    let worker = Worker::new(db.pool().clone(), config())
        .flow(flow)
        .start()
        .await
        .unwrap();
    let client = Client::new(db.pool().clone());
    sqlx::query("insert into pgflow.model_prices values ('m-1', 1, 2)")
        .execute(db.pool())
        .await
        .unwrap();
    let run = client.start_flow("mixed", &json!({})).await.unwrap();
    let out = wait_output(&client, &run).await;
    assert_eq!(out, json!({"render": "hello on attempt 2"}));
    worker.shutdown().await.unwrap();

    let rows: Vec<(String, i32, i64, i64)> = sqlx::query_as(
        "select step_slug, attempt, input_tokens, output_tokens from pgflow.task_usage order by attempt",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![("load".into(), 1, 10, 5), ("load".into(), 2, 20, 5)]
    );
    let (calls, abandoned, input, cost): (i64, i64, i64, f64) = sqlx::query_as(
        "select calls, abandoned_calls, input_tokens, cost_usd::float8 from pgflow.step_usage
          where run_id = $1 and step_slug = 'load'",
    )
    .bind(run.run_id())
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((calls, abandoned, input), (2, 1, 30));
    // (30 input × $1 + 10 output × $2) per million tokens.
    assert!((cost - 50.0 / 1e6).abs() < 1e-15, "{cost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_postpones_the_next_attempt() {
    let db = TestDb::new().await;
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let hits = seen.clone();
    let app = axum::Router::new().route(
        "/limited",
        get(move || {
            let hits = hits.clone();
            async move {
                let mut hits = hits.lock().unwrap();
                hits.push(Instant::now());
                if hits.len() == 1 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "4")],
                        "slow down",
                    )
                } else {
                    (StatusCode::OK, [("retry-after", "0")], "fine")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let resources = Resources::new().unwrap();
    let fetch = BuiltinHandler::prepare(
        &json!({"kind": "http", "url": format!("http://{addr}/limited"), "output": "text"}),
        &resources,
    )
    .unwrap();
    // base delay 1 s: without Retry-After the retry would come after 2 s.
    let flow = WorkerFlow::builder("limited")
        .base_delay(1)
        .builtin_step(StepDef::single("fetch"), fetch)
        .build()
        .unwrap();
    let worker = Worker::new(db.pool().clone(), config())
        .flow(flow)
        .start()
        .await
        .unwrap();
    let client = Client::new(db.pool().clone());
    let run = client.start_flow("limited", &json!({})).await.unwrap();
    let out = wait_output(&client, &run).await;
    assert_eq!(out["fetch"]["body"], "fine");
    worker.shutdown().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let gap = seen[1] - seen[0];
    assert!(
        gap >= Duration::from_secs(4),
        "retried after {gap:?}, before Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_attempt_is_not_counted_as_the_completing_one() {
    let db = TestDb::new().await;
    sqlx::query("update pgflow.config set dead_worker_after = '1 second'")
        .execute(db.pool())
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(db.url())
        .await
        .unwrap();
    // Attempt 1 spends tokens, then hangs until its worker is killed;
    // attempt 2 spends and completes.
    let build = || {
        WorkerFlow::builder("costly")
            .timeout(30)
            .step(
                StepDef::single("ask"),
                |_input: Value, ctx: TaskContext| async move {
                    let attempt = ctx.attempt();
                    ctx.report_usage(&usage("m-2", 100, 7))
                        .await
                        .map_err(|e| e.to_string())?;
                    if attempt == 1 {
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, String>(json!({"attempt": attempt}))
                },
            )
            .build()
            .unwrap()
    };
    let first = Worker::new(pool.clone(), config())
        .flow(build())
        .start()
        .await
        .unwrap();
    let first_id = first.worker_ids()[0];
    let client = Client::new(pool.clone());
    let run = client.start_flow("costly", &json!({})).await.unwrap();
    wait_until(
        "attempt 1 to record its usage",
        Duration::from_secs(30),
        || {
            let pool = pool.clone();
            async move { count(&pool, "select count(*) from pgflow.task_usage").await == 1 }
        },
    )
    .await;
    // Killed: its tasks are aborted, no report, no heartbeat, no stop mark.
    drop(first);

    let second = Worker::new(pool.clone(), config())
        .flow(build())
        .start()
        .await
        .unwrap();
    let out = wait_output(&client, &run).await;
    assert_eq!(out, json!({"ask": {"attempt": 2}}));

    // The dead worker's late report is not recorded against attempt 2.
    let late = api::record_task_usage(
        &pool,
        run.run_id(),
        "ask",
        0,
        first_id,
        &api::UsageRecord {
            model: "m-2",
            input_tokens: Some(100),
            output_tokens: Some(7),
            latency_ms: 1,
        },
    )
    .await
    .unwrap();
    assert!(!late);
    second.shutdown().await.unwrap();

    let (calls, abandoned, input): (i64, i64, i64) = sqlx::query_as(
        "select calls, abandoned_calls, input_tokens from pgflow.run_usage where run_id = $1",
    )
    .bind(run.run_id())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((calls, abandoned, input), (2, 1, 200));
    let per_attempt: Vec<i32> =
        sqlx::query_scalar("select attempt from pgflow.task_usage order by attempt")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(per_attempt, vec![1, 2]);
}
