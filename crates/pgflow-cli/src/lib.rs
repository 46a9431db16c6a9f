//! The `pgflow` command line.
//!
//! `main.rs` only calls [`main`]; argument parsing is [`Cli`], and each
//! subcommand is a module under [`commands`] with an `Args` struct and an async
//! `run`. To add a subcommand: add a module there and a variant to [`Command`].
//!
//! `demo` and `bench` are cargo features (on by default): without them
//! (`--no-default-features`) the binary builds without `pgflow-pgtemp` and
//! `pgflow-bench`.
//!
//! Output conventions: results go to stdout (human tables by default, JSON
//! with `--json`), logs and errors to stderr. Colours only when stdout is a
//! terminal and `NO_COLOR` is unset.

pub mod commands;
pub mod context;
pub mod duration;
pub mod flowfile;
pub mod output;
pub mod progress;
pub mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use context::{Context, GlobalArgs};

/// Postgres-native workflow (DAG) coordinator.
#[derive(Debug, Parser)]
#[command(name = "pgflow", version, about)]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install pgmq (if missing) and the pgflow schema, or upgrade it.
    Install(commands::install::Args),
    /// Register, list, show and delete flow definitions.
    Flow(commands::flow::Args),
    /// Start, list, show, watch, cancel and retry runs.
    Run(commands::run::Args),
    /// Serve the built-in step handlers stored with flows (no Rust needed).
    Worker(commands::worker::Args),
    /// List workers: alive, stale (no recent heartbeat) or stopped.
    Workers(commands::workers::Args),
    /// Queue depth per flow: visible and total messages, oldest message age.
    Queues(commands::queues::Args),
    /// Delete finished runs, stale workers and archived messages older than a duration.
    Prune(commands::prune::Args),
    /// Run an example flow end to end with in-process workers (starts a
    /// throwaway PostgreSQL when no database is given).
    #[cfg(feature = "demo")]
    Demo(commands::demo::Args),
    /// Benchmark this machine: map, chain, hop latency and idle cost of real
    /// worker processes, each against the server's own commit rate.
    #[cfg(feature = "bench")]
    Bench(commands::bench::Args),
    /// Serve the web dashboard: DAGs, live runs, workers, queues, /metrics.
    #[cfg(feature = "dashboard")]
    Dashboard(commands::dashboard::Args),
}

/// Runs a parsed command line; output goes to stdout, logs to stderr. The
/// exit code is the command's verdict (e.g. `run watch` on a failed run).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context::new(cli.global);
    match cli.command {
        Command::Install(args) => commands::install::run(&ctx, args).await,
        Command::Flow(args) => commands::flow::run(&ctx, args).await,
        Command::Run(args) => commands::run::run(&ctx, args).await,
        Command::Worker(args) => commands::worker::run(&ctx, args).await,
        Command::Workers(args) => commands::workers::run(&ctx, args).await,
        Command::Queues(args) => commands::queues::run(&ctx, args).await,
        Command::Prune(args) => commands::prune::run(&ctx, args).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => commands::demo::run(&ctx, args).await,
        #[cfg(feature = "bench")]
        Command::Bench(args) => commands::bench::run(&ctx, args).await,
        #[cfg(feature = "dashboard")]
        Command::Dashboard(args) => commands::dashboard::run(&ctx, args).await,
    }
}

/// Entry point of the binary: sets up logging (`RUST_LOG`, default `warn`;
/// see [`telemetry`]), parses arguments, runs, and turns an error into a
/// message and exit code 1.
pub fn main() -> ExitCode {
    let telemetry = telemetry::init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for lingering blocking tasks (e.g. a stdin reader).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    telemetry.shutdown();
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
