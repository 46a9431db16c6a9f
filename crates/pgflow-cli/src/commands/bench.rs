//! `pgflow bench`: the benchmark harness of `crates/pgflow-bench`, the same
//! library as the `pgflow-bench` binary. Its worker processes are this
//! binary re-executed as `pgflow bench worker` (hidden). Uses
//! `--database-url` / `DATABASE_URL` when given, else a throwaway cluster
//! with durable settings; `--json` prints the report as JSON.

use std::process::ExitCode;

use crate::Context;

/// Arguments of `pgflow bench`.
pub type Args = pgflow_bench::BenchArgs;

/// Runs the benchmark (or, internally, one of its worker processes).
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let cmd = pgflow_bench::SelfCommand::current(&["bench"])?;
    pgflow_bench::main(ctx.database_url.clone(), ctx.json, args, cmd).await?;
    Ok(ExitCode::SUCCESS)
}
