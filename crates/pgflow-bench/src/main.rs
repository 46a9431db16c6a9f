//! `pgflow-bench`: see the library docs (`cargo doc -p pgflow-bench`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use pgflow_bench::{BenchArgs, SelfCommand};
use tracing_subscriber::EnvFilter;

/// Benchmarks pgflow-rs against the server's own single-row commit rate.
#[derive(Debug, Parser)]
#[command(name = "pgflow-bench", version, about)]
struct Cli {
    /// PostgreSQL URL to benchmark (pgflow is installed there if missing);
    /// without it, a throwaway cluster with durable settings is started.
    #[arg(long)]
    database_url: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,sqlx=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|rt| {
            let cmd = SelfCommand::current(&[])?;
            rt.block_on(pgflow_bench::main(
                cli.database_url,
                cli.json,
                cli.args,
                cmd,
            ))
            .map_err(anyhow::Error::from)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
