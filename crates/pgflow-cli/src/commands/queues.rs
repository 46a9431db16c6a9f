//! `pgflow queues`: per flow, the depth of its pgmq queue.

use std::process::ExitCode;

use pgflow_db::inspect;

use crate::context::db_error;
use crate::output::{self, print_json, Table};
use crate::Context;

/// Arguments of `pgflow queues` (only the global options).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Prints queue depth per flow.
pub async fn run(ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    let pool = ctx.pool().await?;
    let queues = inspect::queue_stats(&pool).await.map_err(db_error)?;
    if ctx.json {
        print_json(&queues)?;
        return Ok(ExitCode::SUCCESS);
    }
    if queues.is_empty() {
        println!("no flows registered, so no queues");
        return Ok(ExitCode::SUCCESS);
    }
    let s = ctx.style;
    let mut table = Table::new(["FLOW", "VISIBLE/TOTAL", "IN FLIGHT", "OLDEST MESSAGE"]);
    for q in &queues {
        let depth = if q.has_queue {
            format!("{}/{}", q.visible.unwrap_or(0), q.total.unwrap_or(0))
        } else {
            s.red("queue missing")
        };
        table.row(vec![
            q.flow_slug.clone(),
            depth,
            q.tasks_in_flight.to_string(),
            q.oldest_age_secs
                .map(|a| format!("{} ago", output::duration(f64::from(a))))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    table.print(s);
    Ok(ExitCode::SUCCESS)
}
