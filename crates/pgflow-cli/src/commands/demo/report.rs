//! What the demo prints once its run has ended: the result and how to
//! inspect it, or all of it as JSON.

use serde_json::json;

use crate::output::{self, print_json};
use crate::progress::Snapshot;
use crate::Context;

/// Where the run lives, for the inspection hints.
pub struct Target<'a> {
    /// The database URL as it may be shown (password hidden unless it is
    /// the demo's own cluster).
    pub url: &'a str,
    /// The `psql` to suggest: the cluster's own, else the one on PATH.
    pub psql: String,
    /// Whether the cluster goes away when the demo exits.
    pub removed_on_exit: bool,
}

/// This program's own path, so the printed commands work when `pgflow` is
/// not on `PATH` (e.g. after `scripts/demo`, which runs it from `target/`).
pub fn pgflow_path() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "pgflow".into())
}

/// The psql and pgflow commands to inspect the run, for a database that
/// stays up.
pub fn inspect_commands(target: &Target<'_>, run_id: &str) -> String {
    include_str!("inspect.txt")
        .replace("{psql}", &target.psql)
        .replace("{pgflow}", &pgflow_path())
        .replace("{url}", target.url)
        .replace("{run_id}", run_id)
}

/// Prints the finished run.
pub fn print(ctx: &Context, snap: &Snapshot, target: &Target<'_>) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(&json!({
            "database_url": target.url,
            "run": snap,
        }));
    }
    println!();
    if let Some(out) = &snap.run.output {
        println!("result:");
        println!("{}", serde_json::to_string_pretty(out)?);
    }
    println!();
    if target.removed_on_exit {
        // Commands naming a cluster that is about to vanish would only fail.
        println!(
            "The throwaway cluster is removed when the demo exits. To look around afterwards, run\n  \
             {} demo --keep\n\
             which leaves it running and prints psql and pgflow commands for its URL.",
            pgflow_path()
        );
    } else {
        print!("{}", inspect_commands(target, &snap.run.run_id.to_string()));
    }
    println!(
        "\ndemo run {} in {}",
        ctx.style.status(snap.run.status.as_str()),
        output::duration(snap.run.duration_secs)
    );
    Ok(())
}
