//! `pgflow dashboard`: serves the web dashboard (crate `pgflow-dashboard`)
//! against `--database-url` until SIGINT/SIGTERM. Read-only unless
//! `--allow-actions`; listens on 127.0.0.1:8080 unless `--listen`; any
//! non-loopback address needs `--auth-token` (or `PGFLOW_DASHBOARD_TOKEN`).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use pgflow_dashboard::{Dashboard, DashboardConfig};
use pgflow_db::error::redact_url;

use crate::Context;

/// Arguments of `pgflow dashboard`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on. Anything but a loopback address needs --auth-token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve the cancel, retry and start-run actions (read-only without it).
    #[arg(long)]
    pub allow_actions: bool,
    /// Require this token: browsers log in with it, API clients and
    /// Prometheus send `Authorization: Bearer TOKEN`.
    #[arg(long, env = "PGFLOW_DASHBOARD_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// A worker without a heartbeat for this long is shown as stale.
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub stale_after: std::time::Duration,
}

/// Serves until a signal.
pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // Listen from the start: the port accepts connections as soon as it is
    // bound, and a SIGTERM right then must stop the dashboard cleanly too.
    let stop_requested =
        pgflow_worker::shutdown_signal_listener().context("cannot listen for SIGINT/SIGTERM")?;
    let auth_token = args.auth_token.filter(|t| !t.is_empty());
    // Refuse an unsafe address before touching the database.
    pgflow_dashboard::security::check_listen(args.listen, auth_token.as_deref())
        .map_err(anyhow::Error::msg)?;
    let url = ctx.url()?;
    let parsed = pgflow_db::pool::connect_options(url)
        .with_context(|| format!("invalid database URL {}", redact_url(url)))?;
    if parsed.pooler {
        // It LISTENs and prepares its queries: both need a session.
        anyhow::bail!(
            "the dashboard needs a direct connection, not one through a transaction-mode pooler: \
             give it the database's own address, without pooler=transaction ({})",
            redact_url(url)
        );
    }
    let options = parsed.options;
    let config = DashboardConfig {
        listen: args.listen,
        allow_actions: args.allow_actions,
        auth_token,
        stale_after: args.stale_after,
        ..DashboardConfig::default()
    };
    let dashboard = Dashboard::start(options, config)
        .await
        .with_context(|| format!("dashboard on {}", redact_url(url)))?;
    println!(
        "pgflow dashboard listening on http://{} ({})",
        dashboard.local_addr(),
        if args.allow_actions {
            "actions allowed"
        } else {
            "read-only"
        }
    );
    stop_requested.await;
    dashboard.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
