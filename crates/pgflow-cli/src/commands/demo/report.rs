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
    let text = include_str!("inspect.txt")
        .replace("{psql}", &target.psql)
        .replace("{url}", target.url)
        .replace("{run_id}", &snap.run.run_id.to_string());
    print!("{text}");
    if target.removed_on_exit {
        println!(
            "(the throwaway cluster is removed when the demo exits; run `pgflow demo --keep` to keep it)"
        );
    }
    println!(
        "\ndemo run {} in {}",
        ctx.style.status(snap.run.status.as_str()),
        output::duration(snap.run.duration_secs)
    );
    Ok(())
}
