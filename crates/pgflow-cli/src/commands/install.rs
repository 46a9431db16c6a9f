//! `pgflow install`: install pgmq (when missing) and apply pgflow migrations; optionally
//! create the least-privileged worker and read-only roles.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::output::print_json;
use crate::Context;

/// Arguments of `pgflow install`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also create (when missing) a NOLOGIN role for workers, allowed only to claim and
    /// report tasks, and a read-only role for inspection (needs CREATEROLE).
    #[arg(long)]
    create_roles: bool,
    /// Name of the worker role created by --create-roles.
    #[arg(long, default_value = "pgflow_worker", requires = "create_roles")]
    worker_role: String,
    /// Name of the read-only role created by --create-roles.
    #[arg(long, default_value = "pgflow_reader", requires = "create_roles")]
    reader_role: String,
}

/// Installs or upgrades, then prints what was done.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // Connect once through the CLI's own path first: its errors say what kind
    // of failure it was (refused, auth, missing database, TLS, not a
    // postgres:// URL) instead of the installer driver's raw text.
    crate::context::connect(ctx.url()?, 1).await?.close().await;
    let report = pgflow_db::install::install(ctx.url()?).await?;
    let roles = if args.create_roles {
        let pool = ctx.pool().await?;
        pgflow_db::api::setup_roles(&pool, &args.worker_role, &args.reader_role)
            .await
            .context("creating roles (the connecting role needs CREATEROLE)")?;
        Some([args.worker_role, args.reader_role])
    } else {
        None
    };
    if ctx.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some([worker, reader]) = &roles {
            value["roles"] = serde_json::json!({"worker": worker, "reader": reader});
        }
        print_json(&value)?;
    } else {
        println!("{report}");
        if let Some([worker, reader]) = &roles {
            println!("roles ready: {worker} (workers), {reader} (read-only); grant them to login roles, e.g.");
            println!("  CREATE ROLE app_worker LOGIN PASSWORD '...' IN ROLE {worker};");
        }
    }
    Ok(ExitCode::SUCCESS)
}
