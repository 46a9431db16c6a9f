//! `pgflow install`: install pgmq (when missing) and apply pgflow migrations.

use super::DatabaseArgs;

/// Arguments of `pgflow install`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Installs or upgrades, then prints what was done.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let report = pgflow_db::install::install(args.db.url()?).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
