//! `pgflow install`: install pgmq (when missing) and apply pgflow migrations.

use std::process::ExitCode;

use crate::output::print_json;
use crate::Context;

/// Arguments of `pgflow install` (only the global options).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Installs or upgrades, then prints what was done.
pub async fn run(ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    let report = pgflow_db::install::install(ctx.url()?).await?;
    if ctx.json {
        print_json(&report)?;
    } else {
        println!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
