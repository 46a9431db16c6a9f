//! The one state every handler shares: the pool, the event hub, the settings
//! and the per-process secrets. Cheap to clone (all `Arc`s inside).

use std::sync::Arc;
use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;
use sqlx::PgPool;

use crate::events::EventHub;

/// What the operator chose at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Serve the cancel/retry/start actions.
    pub allow_actions: bool,
    /// Token every request must present (bearer header or login cookie).
    pub auth_token: Option<String>,
    /// A worker without a heartbeat for this long is `stale`.
    pub stale_after: Duration,
    /// Bound to a loopback address: only loopback `Host` names are served
    /// (blocks DNS-rebinding pages from reading the dashboard).
    pub loopback_only: bool,
}

/// Random values made at start and never shown outside the process's pages.
#[derive(Debug)]
pub struct Secrets {
    /// Put in every form and `<meta name="csrf-token">`; required on every POST.
    pub csrf_token: String,
    /// The login cookie's value once the auth token was given.
    pub session_id: String,
}

impl Secrets {
    fn generate() -> Self {
        let random = || {
            rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(40)
                .map(char::from)
                .collect::<String>()
        };
        Secrets {
            csrf_token: random(),
            session_id: random(),
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Query connections.
    pub pool: PgPool,
    /// Live events from the one `LISTEN` connection.
    pub events: EventHub,
    /// The operator's choices.
    pub settings: Arc<Settings>,
    /// CSRF token and session id.
    pub secrets: Arc<Secrets>,
}

impl AppState {
    /// A state with fresh secrets and an event hub nobody feeds yet (see
    /// [`crate::events::run_listener`]).
    pub fn new(pool: PgPool, settings: Settings) -> Self {
        AppState {
            pool,
            events: EventHub::new(),
            settings: Arc::new(settings),
            secrets: Arc::new(Secrets::generate()),
        }
    }
}
