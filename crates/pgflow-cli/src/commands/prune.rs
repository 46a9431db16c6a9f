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
    #[arg(long, value_parser = parse_age)]
    older_than: Duration,
}

/// A `humantime` duration (`7d`, `12h`, `1h 30m`, `1w`), with a hint when
/// the unit is missing (`7`), the usual slip.
fn parse_age(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| match e {
        humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            format!("missing unit in {text:?}: use e.g. 7d, 12h, 30m or 45s")
        }
        e => format!("{e} in {text:?}"),
    })
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
            "pruned {} finished run(s) and {} stale worker(s) older than {}, and archived messages",
            report.runs,
            report.workers,
            timestamp(&report.cutoff)
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_units_and_combinations() {
        assert_eq!(parse_age("7d").unwrap().as_secs(), 7 * 86_400);
        assert_eq!(parse_age("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_age("1w 2d").unwrap().as_secs(), 9 * 86_400);
        assert_eq!(parse_age("0s").unwrap().as_secs(), 0);
    }

    #[test]
    fn ages_without_a_unit_or_with_garbage_are_refused() {
        assert!(parse_age("7").unwrap_err().contains("missing unit"));
        assert!(parse_age("").is_err());
        assert!(parse_age("d7").is_err());
        assert!(parse_age("3 fortnights").is_err());
    }
}
