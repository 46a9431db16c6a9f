//! `pgflow prune --older-than DURATION`: retention.

use std::process::ExitCode;
use std::time::Duration;

use pgflow_db::inspect;

use crate::context::db_error;
use crate::output::{print_json, timestamp};
use crate::Context;

/// Arguments of `pgflow prune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Age cut-off, e.g. 7d, 12h, 30m, 1w, 1h30m. Finished (completed, failed,
    /// cancelled) runs that ended before it, workers whose last heartbeat is
    /// older, and archived queue messages older are deleted. Started runs are
    /// never pruned.
    #[arg(long, value_parser = crate::duration::parse)]
    older_than: Duration,
}

/// Prunes and reports what went.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let report = inspect::prune(&pool, args.older_than.as_secs_f64())
        .await
        .map_err(db_error)?;
    if ctx.json {
        print_json(&report)?;
    } else {
        println!(
            "pruned {} finished run(s), {} stale worker(s) and {} archived message(s) older than {}",
            report.runs,
            report.workers,
            report.archived_messages,
            timestamp(&report.cutoff)
        );
    }
    Ok(ExitCode::SUCCESS)
}
