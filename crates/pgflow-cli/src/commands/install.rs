//! `pgflow install`: install pgmq (when missing) and apply pgflow migrations; optionally
//! create the least-privileged worker and read-only roles; or, with `--dry-run`, only
//! list what would be applied.

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
    /// Also broadcast every event through Supabase's `realtime.send`, as upstream pgflow
    /// does. Refused unless `realtime.send` and its schema belong to a superuser or the
    /// owner of schema `pgflow`: pgflow calls it with its owner's privileges.
    #[arg(long, conflicts_with = "no_realtime")]
    realtime: bool,
    /// Stop broadcasting events through `realtime.send` (NOTIFY is unaffected).
    #[arg(long)]
    no_realtime: bool,
    /// Only list what would be done (pgmq to install, migrations to apply, in order);
    /// change nothing.
    #[arg(long, conflicts_with_all = ["create_roles", "realtime", "no_realtime"])]
    dry_run: bool,
}

/// Installs or upgrades, then prints what was done.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // Connect once through the CLI's own path first: its errors say what kind
    // of failure it was (refused, auth, missing database, TLS, not a
    // postgres:// URL) instead of the installer driver's raw text.
    crate::context::connect(ctx.url()?, 1).await?.close().await;
    if args.dry_run {
        let plan = pgflow_db::install::dry_run(ctx.url()?).await?;
        if ctx.json {
            print_json(&serde_json::to_value(&plan)?)?;
        } else {
            println!("{plan}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = pgflow_db::install::install(ctx.url()?).await?;
    let realtime = match (args.realtime, args.no_realtime) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    if let Some(enabled) = realtime {
        let pool = ctx.pool().await?;
        pgflow_db::api::set_realtime_send(&pool, enabled)
            .await
            .context("setting the realtime broadcast")?;
    }
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
        if let Some(enabled) = realtime {
            value["realtime_send"] = serde_json::json!(enabled);
        }
        print_json(&value)?;
    } else {
        println!("{report}");
        if let Some([worker, reader]) = &roles {
            println!("roles ready: {worker} (workers), {reader} (read-only); grant them to login roles, e.g.");
            println!("  CREATE ROLE app_worker LOGIN PASSWORD '...' IN ROLE {worker};");
        }
        match realtime {
            Some(true) => println!("events are also broadcast through realtime.send"),
            Some(false) => println!("events are no longer broadcast through realtime.send"),
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}
