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
//! sweeper). `--metrics-listen ADDR` serves the worker's Prometheus metrics
//! (see `pgflow_worker::WorkerMetrics`) on `http://ADDR/metrics`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use pgflow_db::api;
use pgflow_worker::{CompileMode, Resources, Worker, WorkerConfig, WorkerFlow, WorkerMetrics};
use prometheus_client::registry::Registry;

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
    /// Serve this worker's Prometheus metrics on http://ADDR/metrics (e.g.
    /// 127.0.0.1:9187; port 0 picks a free port and prints it). Metrics name
    /// flows and steps, never inputs or outputs.
    #[arg(long, value_name = "ADDR", env = "PGFLOW_WORKER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// A direct connection (not through a pooler) used only to LISTEN for
    /// task notifications. With `?pooler=transaction` in the database URL and
    /// no listen URL the worker long-polls instead.
    #[arg(long, env = "PGFLOW_LISTEN_URL", hide_env_values = true)]
    pub listen_url: Option<String>,
}

/// Loads the flows, then serves them until a signal.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // Listen from the start: a SIGTERM during start-up (`docker stop` right
    // after `up`) then stops the worker cleanly once it runs.
    let stop_requested = pgflow_worker::shutdown_signal_listener()?;
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
                    "skipping flow {}: {} without a built-in handler: {}",
                    flow.flow_slug,
                    if flow.steps_without_handler.len() == 1 {
                        "step"
                    } else {
                        "steps"
                    },
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

    let metrics = match args.metrics_listen {
        Some(addr) => Some(serve_metrics(addr).await?),
        None => None,
    };
    let config = WorkerConfig {
        compile_mode: CompileMode::Skip,
        function_name: args.name.clone(),
        batch_size: args.batch_size as usize,
        max_concurrent: args.concurrency as usize,
        heartbeat_interval: args.heartbeat_interval,
        shutdown_grace: args.shutdown_grace,
        metrics,
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
    stop_requested.await;
    eprintln!("shutting down: finishing in-flight tasks");
    running.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// The OpenMetrics text format's content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Registers the worker's metrics and serves them on `addr` until the
/// process ends. Binding fails here, before the worker starts, with the
/// address in the message.
async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<WorkerMetrics> {
    let mut registry = Registry::default();
    let metrics = WorkerMetrics::register(&mut registry);
    let registry = Arc::new(registry);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for --metrics-listen: {e}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &registry) {
                    Ok(()) => (
                        axum::http::StatusCode::OK,
                        [(axum::http::header::CONTENT_TYPE, OPENMETRICS)],
                        text,
                    ),
                    Err(e) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        format!("encoding the metrics failed: {e}"),
                    ),
                }
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    eprintln!("metrics on http://{bound}/metrics");
    Ok(metrics)
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
