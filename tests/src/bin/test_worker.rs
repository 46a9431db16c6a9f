//! A worker process for the end-to-end worker tests (tests/tests/worker_*.rs).
//! Tests spawn it as a real OS process (so they can SIGKILL / SIGTERM it),
//! choosing the flows and timings with flags. Prints `READY <worker ids>` on
//! stdout once registered, exits 0 after a graceful shutdown.
//!
//! Flows:
//! - `diamond`: a(n)=n+1; b=a*2, c=a*3 (both after a); d=b+c.
//! - `bigmap`: `double` maps over the input array (x*2, sleeping `--task-ms`),
//!   `total` sums the doubles.
//! - `failing`: four root steps (max 2 attempts, skip when exhausted) that
//!   return an error, panic, overrun their 3 s timeout, or return a value
//!   that is not JSON.
//! - `nulmap`: `each` doubles its element, but returns an output jsonb refuses
//!   (a NUL character) on the first attempt of elements divisible by 5.
//! - `dbsettings`: three root steps defined with a 60 s timeout and a 1 s base delay, which
//!   tests then change in `pgflow.steps`: `slow` sleeps 10 s (1 attempt); `second` fails its
//!   first attempt and returns the attempt number `TaskContext` reports; `delayed` always
//!   fails (2 attempts). All skip when exhausted.
//! - `chain`: first(n)=n+1 → flaky=first*10, failing its first attempt
//!   (max 10 attempts, 1 s base delay) → last=flaky+1.
//!
//! Connections carry `application_name = pgflow-test-worker`, so tests can
//! find (and terminate) them in `pg_stat_activity`.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use pgflow::{CompileMode, StepDef, WhenMode, Worker, WorkerConfig, WorkerFlow};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[derive(Parser, Debug)]
struct Args {
    /// Database URL.
    #[arg(long)]
    url: String,
    /// Flows to serve (diamond, bigmap, failing, chain, nulmap, dbsettings).
    #[arg(long = "flow", required = true)]
    flows: Vec<String>,
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Sleep per `bigmap` task, in milliseconds.
    #[arg(long, default_value_t = 0)]
    task_ms: u64,
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 1000)]
    sweep_ms: u64,
    #[arg(long, default_value_t = 30_000)]
    grace_ms: u64,
    #[arg(long, default_value_t = 1)]
    max_poll_seconds: u64,
    /// Long-poll with read_with_poll + start_tasks instead of LISTEN + claim_tasks.
    #[arg(long)]
    no_listen: bool,
    /// A direct URL for LISTEN only (the `--url` may go through a pooler,
    /// `?pooler=transaction`).
    #[arg(long)]
    listen_url: Option<String>,
}

#[derive(Deserialize)]
struct DiamondInput {
    n: i64,
}
#[derive(Deserialize)]
struct FromA {
    a: i64,
}
#[derive(Deserialize)]
struct FromBC {
    b: i64,
    c: i64,
}
#[derive(Deserialize)]
struct FromFirst {
    first: i64,
}
#[derive(Deserialize)]
struct FromFlaky {
    flaky: i64,
}
#[derive(Deserialize)]
struct Doubles {
    double: Vec<i64>,
}

type R<T> = Result<T, String>;

fn diamond() -> WorkerFlow {
    WorkerFlow::builder("diamond")
        .timeout(5)
        .step(StepDef::single("a"), |i: DiamondInput, _| async move {
            R::Ok(i.n + 1)
        })
        .step(
            StepDef::single("b").depends_on(["a"]),
            |i: FromA, _| async move { R::Ok(i.a * 2) },
        )
        .step(
            StepDef::single("c").depends_on(["a"]),
            |i: FromA, _| async move { R::Ok(i.a * 3) },
        )
        .step(
            StepDef::single("d").depends_on(["b", "c"]),
            |i: FromBC, _| async move { R::Ok(i.b + i.c) },
        )
        .build()
        .expect("valid flow")
}

fn bigmap(task_ms: u64) -> WorkerFlow {
    WorkerFlow::builder("bigmap")
        .timeout(5)
        .base_delay(1)
        .step(StepDef::map("double"), move |x: i64, _| async move {
            if task_ms > 0 {
                tokio::time::sleep(Duration::from_millis(task_ms)).await;
            }
            R::Ok(x * 2)
        })
        .step(
            StepDef::single("total").depends_on(["double"]),
            |i: Doubles, _| async move { R::Ok(i.double.iter().sum::<i64>()) },
        )
        .build()
        .expect("valid flow")
}

fn failing() -> WorkerFlow {
    let step = |slug: &str| {
        StepDef::single(slug)
            .max_attempts(2)
            .base_delay(1)
            .timeout(3)
            .when_exhausted(WhenMode::Skip)
    };
    WorkerFlow::builder("failing")
        .step(
            step("returns_error"),
            |_: serde_json::Value, _| async move { R::<i64>::Err("deliberate failure".into()) },
        )
        .step(step("panics"), |_: serde_json::Value, _| async move {
            if true {
                panic!("deliberate panic");
            }
            R::Ok(0)
        })
        .step(step("too_slow"), |_: serde_json::Value, _| async move {
            tokio::time::sleep(Duration::from_secs(600)).await;
            R::Ok(0)
        })
        .step(step("not_json"), |_: serde_json::Value, _| async move {
            // JSON object keys must be strings; tuple keys cannot serialize.
            R::Ok(HashMap::from([((1, 2), 3)]))
        })
        .build()
        .expect("valid flow")
}

/// `nulmap`: `each` doubles its element after `--task-ms`, except that on a first attempt an
/// element divisible by 5 returns a string with a NUL character, which PostgreSQL's jsonb
/// refuses: the batch holding it is refused, reported one by one, and only that task fails.
fn nulmap(task_ms: u64) -> WorkerFlow {
    WorkerFlow::builder("nulmap")
        .max_attempts(2)
        .base_delay(1)
        .step(StepDef::map("each"), move |x: i64, ctx| async move {
            tokio::time::sleep(Duration::from_millis(task_ms)).await;
            let attempts: i32 = sqlx::query_scalar(
                "select attempts_count from pgflow.step_tasks \
                 where run_id = $1 and step_slug = $2 and task_index = $3",
            )
            .bind(ctx.run_id())
            .bind(ctx.step_slug())
            .bind(ctx.task_index())
            .fetch_one(ctx.pool())
            .await
            .map_err(|e| e.to_string())?;
            if x % 5 == 0 && attempts <= 1 {
                return R::Ok(serde_json::json!("nul\u{0}"));
            }
            R::Ok(serde_json::json!(x * 2))
        })
        .build()
        .expect("valid flow")
}

fn dbsettings() -> WorkerFlow {
    let step = |slug: &str, attempts: i32| {
        StepDef::single(slug)
            .max_attempts(attempts)
            .when_exhausted(WhenMode::Skip)
    };
    WorkerFlow::builder("dbsettings")
        .timeout(60)
        .base_delay(1)
        .step(step("slow", 1), |_: serde_json::Value, _| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            R::Ok("slept 10 s")
        })
        .step(step("second", 3), |_: serde_json::Value, ctx| async move {
            if ctx.attempt() == 1 {
                return Err("second: fails on its first attempt".to_string());
            }
            R::Ok(ctx.attempt())
        })
        .step(step("delayed", 2), |_: serde_json::Value, _| async move {
            R::<i64>::Err("delayed: always fails".into())
        })
        .build()
        .expect("valid flow")
}

fn chain() -> WorkerFlow {
    WorkerFlow::builder("chain")
        .timeout(3)
        .max_attempts(10)
        .base_delay(1)
        .step(StepDef::single("first"), |i: DiamondInput, _| async move {
            R::Ok(i.n + 1)
        })
        .step(
            StepDef::single("flaky").depends_on(["first"]),
            |i: FromFirst, ctx| async move {
                // attempts_count counts starts, so this fails exactly once
                // per task unless a crash already cost it an attempt.
                let attempts: i32 = sqlx::query_scalar(
                    "select attempts_count from pgflow.step_tasks \
                     where run_id = $1 and step_slug = $2 and task_index = $3",
                )
                .bind(ctx.run_id())
                .bind(ctx.step_slug())
                .bind(ctx.task_index())
                .fetch_one(ctx.pool())
                .await
                .map_err(|e| e.to_string())?;
                if attempts <= 1 {
                    return Err("flaky: fails on its first attempt".to_string());
                }
                R::Ok(i.first * 10)
            },
        )
        .step(
            StepDef::single("last").depends_on(["flaky"]),
            |i: FromFlaky, _| async move { R::Ok(i.flaky + 1) },
        )
        .build()
        .expect("valid flow")
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    // Through pgflow_db::pool, which understands `pooler=transaction`.
    let options = match pgflow::db::pool::connect_options(&args.url) {
        Ok(o) => o.options.application_name("pgflow-test-worker"),
        Err(e) => {
            eprintln!("bad --url: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listen_options = match args
        .listen_url
        .as_deref()
        .map(str::parse::<PgConnectOptions>)
    {
        None => None,
        Some(Ok(o)) => Some(o.application_name("pgflow-test-worker-listen")),
        Some(Err(e)) => {
            eprintln!("bad --listen-url: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pool = match PgPoolOptions::new()
        // One long poll plus `concurrency` reports per flow, and room for
        // heartbeats and the sweeper.
        .max_connections((args.concurrency * args.flows.len()) as u32 + 4)
        // Short, so pollers notice an outage fast and back off / retry.
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = WorkerConfig {
        compile_mode: CompileMode::Development,
        function_name: "test_worker".into(),
        batch_size: args.batch,
        max_concurrent: args.concurrency,
        max_poll: Duration::from_secs(args.max_poll_seconds),
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
        sweep_interval: Some(Duration::from_millis(args.sweep_ms)),
        shutdown_grace: Duration::from_millis(args.grace_ms),
        max_backoff: Duration::from_secs(1),
        listen: !args.no_listen,
        listen_options,
        ..Default::default()
    };
    let mut worker = Worker::new(pool, config);
    for name in &args.flows {
        worker = worker.flow(match name.as_str() {
            "diamond" => diamond(),
            "bigmap" => bigmap(args.task_ms),
            "failing" => failing(),
            "chain" => chain(),
            "nulmap" => nulmap(args.task_ms),
            "dbsettings" => dbsettings(),
            other => {
                eprintln!("unknown flow {other}");
                return ExitCode::FAILURE;
            }
        });
    }
    let running = match worker.start().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("worker start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ids: Vec<String> = running.worker_ids().iter().map(|u| u.to_string()).collect();
    println!("READY {}", ids.join(" "));
    std::io::stdout().flush().ok();
    if let Err(e) = pgflow::shutdown_signal().await {
        eprintln!("signals: {e}");
        return ExitCode::FAILURE;
    }
    match running.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shutdown: {e}");
            ExitCode::FAILURE
        }
    }
}
