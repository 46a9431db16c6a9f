//! `pgflow workers`: who is polling, judged by heartbeat age.

use std::process::ExitCode;

use pgflow_db::inspect::{self, WorkerInfo};
use serde::Serialize;

use crate::context::db_error;
use crate::output::{self, print_json, timestamp, Table};
use crate::Context;

/// Arguments of `pgflow workers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A worker whose last heartbeat is older than this many seconds counts
    /// as stale (workers beat every 5 s by default).
    #[arg(long, default_value_t = 30)]
    stale_after: u64,
    /// Hide stopped workers.
    #[arg(long)]
    active: bool,
}

/// A worker with its judged state, as printed by `--json`.
#[derive(Debug, Serialize)]
struct WorkerLine<'a> {
    /// `alive`, `stale`, `deprecated` or `stopped`.
    state: &'static str,
    #[serde(flatten)]
    worker: &'a WorkerInfo,
}

/// `stopped` (clean exit), `deprecated` (told to stop), `stale` (no recent
/// heartbeat: probably dead) or `alive`.
pub fn state(worker: &WorkerInfo, stale_after_secs: u64) -> &'static str {
    if worker.stopped_at.is_some() {
        "stopped"
    } else if worker.deprecated_at.is_some() {
        "deprecated"
    } else if worker.heartbeat_age_secs > stale_after_secs as f64 {
        "stale"
    } else {
        "alive"
    }
}

/// Lists workers.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let workers = inspect::list_workers(&pool, !args.active)
        .await
        .map_err(db_error)?;
    let lines: Vec<WorkerLine> = workers
        .iter()
        .map(|w| WorkerLine {
            state: state(w, args.stale_after),
            worker: w,
        })
        .collect();
    if ctx.json {
        print_json(&lines)?;
        return Ok(ExitCode::SUCCESS);
    }
    if lines.is_empty() {
        println!("no workers");
        return Ok(ExitCode::SUCCESS);
    }
    let s = ctx.style;
    let mut table = Table::new([
        "WORKER",
        "QUEUE",
        "FUNCTION",
        "STATE",
        "HEARTBEAT",
        "TASKS",
        "STARTED",
    ]);
    for l in &lines {
        let w = l.worker;
        table.row(vec![
            w.worker_id.to_string(),
            w.queue_name.clone(),
            w.function_name.clone(),
            s.status(l.state),
            format!("{} ago", output::duration(w.heartbeat_age_secs)),
            w.active_tasks.to_string(),
            timestamp(&w.started_at),
        ]);
    }
    table.print(s);
    Ok(ExitCode::SUCCESS)
}
