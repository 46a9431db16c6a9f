//! The pgflow web dashboard: see flows as DAGs, watch runs live, look at
//! workers and queues, cancel/retry/start runs (when allowed) and scrape
//! Prometheus metrics, all from one small server embedded in the `pgflow`
//! binary (`pgflow dashboard`).
//!
//! - Pages are rendered on the server with [`maud`] (compile-time templates
//!   that escape every interpolated value); every page has a JSON twin under
//!   `/api/`. The JavaScript and CSS are ours, embedded in the binary: no
//!   build step, no CDN, works offline.
//! - Live updates: one background task owns the only `LISTEN pgflow_events`
//!   connection of the process and fans events out through a
//!   [`tokio::sync::broadcast`] channel to every server-sent-events client
//!   ([`events`]). Events carry ids and statuses only and are hints: pages
//!   re-fetch their JSON when one arrives. Map progress, which sends no
//!   event, comes from one ticker per process ([`progress`]).
//! - Security ([`security`]): listens on 127.0.0.1:8080 by default; a
//!   non-loopback address needs an auth token; actions need
//!   `allow_actions`; every POST needs the per-process CSRF token and a
//!   same-origin `Origin`.
//! - `/metrics` ([`routes::metrics`]) is computed from SQL at scrape time.
//!
//! ```no_run
//! # async fn demo(options: sqlx::postgres::PgConnectOptions) -> Result<(), pgflow_dashboard::StartError> {
//! let dashboard = pgflow_dashboard::Dashboard::start(options, pgflow_dashboard::DashboardConfig::default()).await?;
//! println!("open http://{}", dashboard.local_addr());
//! dashboard.shutdown().await;
//! # Ok(()) }
//! ```

pub mod dag;
pub mod error;
pub mod events;
pub mod progress;
pub mod routes;
pub mod security;
pub mod state;
pub mod views;

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::DashboardError;
pub use routes::router;
pub use state::{AppState, Settings};

/// The `application_name` of the dashboard's query connections.
pub const APPLICATION_NAME: &str = "pgflow-dashboard";
/// The `application_name` of its one `LISTEN` connection.
pub const LISTEN_APPLICATION_NAME: &str = "pgflow-dashboard-listen";

/// How to run a dashboard.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks one).
    pub listen: SocketAddr,
    /// Serve the cancel/retry/start actions (default off: read-only).
    pub allow_actions: bool,
    /// Require this token (bearer header or login cookie) on every request.
    pub auth_token: Option<String>,
    /// A worker without a heartbeat for this long is `stale` (default 30 s).
    pub stale_after: Duration,
    /// Query connections (default 4); the `LISTEN` connection comes on top.
    pub max_connections: u32,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_actions: false,
            auth_token: None,
            stale_after: Duration::from_secs(30),
            max_connections: 4,
        }
    }
}

/// Why a dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unsafe or invalid (e.g. a public address without a token).
    #[error("{0}")]
    Config(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be reached.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
}

/// A running dashboard: its address, and a way to stop it.
pub struct Dashboard {
    local_addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    listener: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

impl Dashboard {
    /// Checks the configuration, connects, binds and serves in the background.
    pub async fn start(
        options: PgConnectOptions,
        config: DashboardConfig,
    ) -> Result<Dashboard, StartError> {
        security::check_listen(config.listen, config.auth_token.as_deref())
            .map_err(StartError::Config)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone().application_name(APPLICATION_NAME))
            .await
            .map_err(StartError::Connect)?;
        // Its own pool of one: PgListener keeps the connection and reconnects
        // through this pool, so it never takes one from the query pool.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options.application_name(LISTEN_APPLICATION_NAME));
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = tcp.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let settings = Settings {
            allow_actions: config.allow_actions,
            auth_token: config.auth_token,
            stale_after: config.stale_after,
            loopback_only: local_addr.ip().is_loopback(),
        };
        let state = AppState::new(pool, settings);
        let (stop, stopped) = watch::channel(false);
        let listener = tokio::spawn(events::run_listener(
            listen_pool,
            state.events.clone(),
            stopped.clone(),
        ));
        let ticker = tokio::spawn(progress::run_ticker(
            state.pool.clone(),
            state.events.clone(),
            stopped.clone(),
        ));
        let app = router(state.clone());
        let mut stopped_server = stopped;
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped_server.wait_for(|s| *s).await;
            };
            if let Err(err) = axum::serve(tcp, app).with_graceful_shutdown(shutdown).await {
                tracing::error!("dashboard server failed: {err}");
            }
        });
        Ok(Dashboard {
            local_addr,
            state,
            stop,
            server,
            listener,
            ticker,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (pool, event hub, settings).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Waits until the server stops by itself (it only does on an error).
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }

    /// Stops accepting requests, ends live streams, stops listening and closes
    /// the pool.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // Open event streams would hold a graceful shutdown forever: end them.
        self.state.events.close();
        let _ = self.server.await;
        let _ = self.listener.await;
        let _ = self.ticker.await;
        self.state.pool.close().await;
    }
}
