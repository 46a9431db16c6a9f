//! `pgflow worker`: serves the built-in handlers stored with flows
//! (`handler` in a flow file, or `pgflow.set_step_handler`), so a flow file
//! and this command make a working pipeline with no Rust written.
//!
//! Serves every flow whose steps all have a handler (flows where only some
//! do are skipped with a warning: their other steps need a Rust worker), or
//! exactly the `--flow` flows (an error when one cannot be served). Every
//! spec is validated at start-up, with what only the worker knows
//! (`--allow-exec`, API-key variables), so a misconfiguration is one clear
//! error naming the flow, step and field instead of failing every task. Runs
//! until SIGINT/SIGTERM, then stops claiming and lets in-flight tasks finish
//! within `--shutdown-grace` (the rest are requeued by the stalled-task
//! sweeper).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use pgflow_db::api;
use pgflow_worker::{CompileMode, Resources, Worker, WorkerConfig, WorkerFlow};

use crate::context::{connect, db_error};
use crate::Context;

/// Arguments of `pgflow worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Serve only this flow (repeatable; default: every flow with handlers).
    #[arg(
        long = "flow",
        value_name = "SLUG",
        env = "PGFLOW_WORKER_FLOWS",
        value_delimiter = ','
    )]
    pub flows: Vec<String>,
    /// Most tasks in flight per flow.
    #[arg(long, default_value_t = 10, env = "PGFLOW_WORKER_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Most messages read per poll.
    #[arg(long, default_value_t = 10, env = "PGFLOW_WORKER_BATCH_SIZE", value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub batch_size: u32,
    /// Let `exec` steps run programs on this machine.
    #[arg(long, env = "PGFLOW_ALLOW_EXEC")]
    pub allow_exec: bool,
    /// Heartbeat period.
    #[arg(long, default_value = "5s", env = "PGFLOW_WORKER_HEARTBEAT", value_parser = crate::duration::parse)]
    pub heartbeat_interval: Duration,
    /// How long in-flight tasks may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value = "30s", env = "PGFLOW_WORKER_SHUTDOWN_GRACE", value_parser = crate::duration::parse)]
    pub shutdown_grace: Duration,
    /// The name this worker registers under (`pgflow workers` shows it).
    #[arg(long, default_value = "pgflow-worker", env = "PGFLOW_WORKER_NAME")]
    pub name: String,
    /// A direct connection (not through a pooler) used only to LISTEN for
    /// task notifications. With `?pooler=transaction` in the database URL and
    /// no listen URL the worker long-polls instead.
    #[arg(long, env = "PGFLOW_LISTEN_URL", hide_env_values = true)]
    pub listen_url: Option<String>,
}

/// Loads the flows, then serves them until a signal.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let url = ctx.url()?;
    // One reading connection per flow, room for reports, and LISTEN is extra.
    let flows_hint = args.flows.len().max(1) as u32;
    let pool = connect(url, args.concurrency + flows_hint + 2).await?;
    let listen_options = args
        .listen_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(listen_options)
        .transpose()?;
    let resources = Resources::new()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?
        .with_allow_exec(args.allow_exec);

    let mut slugs: Vec<String> = args.flows.clone();
    slugs.dedup();
    if slugs.is_empty() {
        for flow in api::flows_with_handlers(&pool).await.map_err(db_error)? {
            if flow.steps_without_handler.is_empty() {
                slugs.push(flow.flow_slug);
            } else {
                tracing::warn!(
                    flow = %flow.flow_slug,
                    steps = ?flow.steps_without_handler,
                    "skipping flow: some steps have no built-in handler (serve it from a Rust worker)"
                );
                eprintln!(
                    "skipping flow {}: step(s) without a built-in handler: {}",
                    flow.flow_slug,
                    flow.steps_without_handler.join(", ")
                );
            }
        }
        if slugs.is_empty() {
            bail!(
                "no flow has built-in handlers for all of its steps; add `handler` to the steps \
                 of a flow file and register it with `pgflow flow add FILE`"
            );
        }
    }

    let config = WorkerConfig {
        compile_mode: CompileMode::Skip,
        function_name: args.name.clone(),
        batch_size: args.batch_size as usize,
        max_concurrent: args.concurrency as usize,
        heartbeat_interval: args.heartbeat_interval,
        shutdown_grace: args.shutdown_grace,
        listen_options,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(pool.clone(), config);
    for slug in &slugs {
        let flow = WorkerFlow::from_database(&pool, slug, &resources).await?;
        worker = worker.flow(flow);
    }
    let running = worker.start().await?;
    eprintln!(
        "pgflow worker serving {} (concurrency {}, batch size {}{}); stop with Ctrl-C",
        slugs.join(", "),
        args.concurrency,
        args.batch_size,
        if args.allow_exec {
            ", exec allowed"
        } else {
            ""
        }
    );
    pgflow_worker::shutdown_signal().await?;
    eprintln!("shutting down: finishing in-flight tasks");
    running.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// The options of `--listen-url`: a session of its own, so never a pooler's.
fn listen_options(url: &str) -> anyhow::Result<sqlx::postgres::PgConnectOptions> {
    let shown = pgflow_db::error::redact_url(url);
    let parsed = pgflow_db::pool::connect_options(url)
        .map_err(|e| anyhow::anyhow!("--listen-url {shown}: {e}"))?;
    if parsed.pooler {
        bail!(
            "--listen-url {shown}: LISTEN needs a session of its own; give the database's \
             direct address, without pooler=transaction"
        );
    }
    Ok(parsed.options)
}
