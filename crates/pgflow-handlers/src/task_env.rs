//! What a handler knows about the task it runs and what the worker lends it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// Looks up environment variables (API keys). The worker uses
/// [`ProcessEnv`]; tests inject a map so they never touch the process
/// environment.
pub trait EnvLookup: Send + Sync {
    /// The variable's value, or `None` when it is unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The worker process's own environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvLookup for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// What the worker lends every handler, built once per worker and shared by
/// all tasks.
#[derive(Clone)]
pub struct Resources {
    /// The HTTP client `http` and `llm` handlers send with (one connection
    /// pool per worker).
    pub http: reqwest::Client,
    /// Where `llm` handlers read their API key.
    pub env: Arc<dyn EnvLookup>,
    /// Whether `exec` handlers may run programs (`pgflow worker --allow-exec`).
    pub allow_exec: bool,
}

impl Resources {
    /// The process environment, a fresh [`default_http_client`], and `exec`
    /// refused.
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: default_http_client()?,
            env: Arc::new(ProcessEnv),
            allow_exec: false,
        })
    }

    /// Replaces the environment lookup.
    pub fn with_env(mut self, env: impl EnvLookup + 'static) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Allows or refuses `exec` handlers.
    pub fn with_allow_exec(mut self, allow: bool) -> Self {
        self.allow_exec = allow;
        self
    }
}

// Hand-written so that environment values (API keys) can never be printed.
impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("allow_exec", &self.allow_exec)
            .finish_non_exhaustive()
    }
}

/// The HTTP client [`Resources::new`] uses: rustls with bundled web roots,
/// no proxy from the environment, redirects followed (up to 10). Timeouts
/// are set per request from the handler spec and the step's deadline.
pub fn default_http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("pgflow-handlers/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .build()
}

/// One task as a handler sees it.
#[derive(Debug, Clone)]
pub struct TaskEnv {
    /// The flow slug.
    pub flow: String,
    /// The run the task belongs to.
    pub run_id: Uuid,
    /// The step slug.
    pub step: String,
    /// The task's index within a map step (0 for single steps).
    pub task_index: i32,
    /// Which attempt this is, starting at 1.
    pub attempt: i32,
    /// When the step's timeout runs out: `http` and `llm` requests stop by
    /// then and `exec` programs are killed.
    pub deadline: Instant,
    /// What the worker lends the handler.
    pub resources: Resources,
}

impl TaskEnv {
    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}
