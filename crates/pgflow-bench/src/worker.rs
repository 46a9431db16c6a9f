//! The worker process: the harness re-executes its own binary with the
//! hidden `worker` subcommand, once per worker. It serves both bench flows
//! with the default [`WorkerConfig`] (except as flagged), prints `READY` on
//! stdout once registered, and shuts down gracefully when its stdin closes
//! (the harness closing it, or dying) or on SIGINT/SIGTERM.

use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use pgflow::{CompileMode, Worker, WorkerConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::io::AsyncReadExt;

use crate::{flows, BenchError, WorkerArgs};

/// Environment variable carrying the database URL to worker processes (kept
/// out of the command line, where `ps` would show a password).
pub const URL_ENV: &str = "PGFLOW_BENCH_WORKER_URL";

/// `application_name` of every worker connection, so the harness can find
/// their server processes.
pub const APP_NAME: &str = "pgflow-bench-worker";

/// The worker settings for these flags: the defaults users get, unless the
/// run compares with an optimisation turned off.
pub fn config(args: &WorkerArgs) -> WorkerConfig {
    let defaults = WorkerConfig::default();
    WorkerConfig {
        // The harness compiles the flows before starting any worker.
        compile_mode: CompileMode::Skip,
        function_name: "pgflow-bench".to_string(),
        listen: !args.no_listen,
        completion_batch_size: if args.no_batch {
            1
        } else {
            defaults.completion_batch_size
        },
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        max_concurrent: args.max_concurrent.unwrap_or(defaults.max_concurrent),
        shutdown_grace: Duration::from_secs(10),
        ..defaults
    }
}

/// Runs one worker process until stdin closes or a signal arrives.
pub async fn run(args: WorkerArgs) -> Result<(), BenchError> {
    let url = std::env::var(URL_ENV).map_err(|_| BenchError::WorkerUrlMissing)?;
    let options = PgConnectOptions::from_str(&url)?.application_name(APP_NAME);
    let config = config(&args);
    let pool = PgPoolOptions::new()
        .max_connections((config.max_concurrent + 4) as u32)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    let mut worker = Worker::new(pool, config);
    for flow in flows::all()? {
        worker = worker.flow(flow);
    }
    let running = worker.start().await?;
    println!("READY");
    std::io::stdout().flush()?;

    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while !matches!(stdin.read(&mut buf).await, Ok(0) | Err(_)) {}
    };
    tokio::select! {
        _ = stdin_closed => {}
        r = pgflow::shutdown_signal() => r?,
    }
    running.shutdown().await?;
    Ok(())
}
