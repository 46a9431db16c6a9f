//! The `pgflow` command line.
//!
//! `main.rs` only calls [`main`]; argument parsing is [`Cli`], and each
//! subcommand is a module under [`commands`] with an `Args` struct and an async
//! `run`. To add a subcommand: add a module there and a variant to [`Command`].

pub mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Postgres-native workflow (DAG) coordinator.
#[derive(Debug, Parser)]
#[command(name = "pgflow", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install pgmq (if missing) and the pgflow schema, or upgrade it.
    Install(commands::install::Args),
}

/// Runs a parsed command line; output goes to stdout, logs to stderr.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Install(args) => commands::install::run(args).await,
    }
}

/// Entry point of the binary: sets up logging (`RUST_LOG`, default `warn`),
/// parses arguments, runs, and turns an error into a message and exit code 1.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
