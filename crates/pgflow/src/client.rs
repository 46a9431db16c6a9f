//! Starting runs, waiting for them, inspecting them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pgflow_db::api::{self, ApiError, RunRow, RunStatus, RunWithStates};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use tokio::sync::broadcast::error::RecvError;
use tracing::debug;
use uuid::Uuid;

use crate::events::{RunEvents, Wake};

/// How often [`RunHandle::wait`] re-reads the run even without a
/// notification (notifications are lost while the listener reconnects, and
/// never arrive through a pooler in transaction mode).
const POLL_FALLBACK: Duration = Duration::from_secs(1);

/// How many pool acquire timeouts in a row [`RunHandle::wait`] accepts
/// before returning the error: a pool that stays exhausted is a
/// misconfiguration to report, not a hiccup to wait out.
pub const MAX_POOL_TIMEOUTS: u32 = 3;

/// A step that made the run fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// The step slug.
    pub step_slug: String,
    /// Its error message, when recorded.
    pub error_message: Option<String>,
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A database call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The input could not be serialized to JSON.
    #[error("run input is not serializable to JSON: {0}")]
    Input(#[source] serde_json::Error),
    /// No such run.
    #[error("run {0} not found")]
    RunNotFound(Uuid),
    /// [`Client::start_flow`] named a flow that is not defined in this
    /// database (compile it first, e.g. by starting a worker for it).
    #[error("flow {0:?} not found; define it first (a worker compiles its flows at start)")]
    FlowNotFound(String),
    /// The run failed; lists each failed step's error.
    #[error("run {run_id} failed: {}", DisplaySteps(steps))]
    RunFailed {
        /// The run.
        run_id: Uuid,
        /// Every failed step with its error message.
        steps: Vec<FailedStep>,
    },
    /// The run was cancelled.
    #[error("run {0} was cancelled")]
    RunCancelled(Uuid),
    /// The run completed but its output does not fit the requested type.
    #[error("run {run_id} completed but its output does not match the expected type: {source}")]
    Output {
        /// The run.
        run_id: Uuid,
        /// The deserialization error.
        #[source]
        source: serde_json::Error,
    },
}

struct DisplaySteps<'a>(&'a [FailedStep]);

impl fmt::Display for DisplaySteps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no step recorded an error");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "step {}: {}",
                s.step_slug,
                s.error_message.as_deref().unwrap_or("(no error message)")
            )?;
        }
        Ok(())
    }
}

/// Starts and inspects runs.
///
/// Clones share one event listener: all [`RunHandle::wait`] calls of a
/// client and its clones are woken through a single `LISTEN` connection,
/// opened outside the pool on the first wait and closed when idle.
#[derive(Debug, Clone)]
pub struct Client {
    pool: PgPool,
    events: Arc<RunEvents>,
}

impl Client {
    /// A client on `pool`; its listener connects with the pool's options.
    /// In pooler mode (`pooler=transaction`, see [`pgflow_db::pool`]) it does
    /// not listen at all and waits poll every second: give a direct address
    /// with [`Client::with_listen_options`] for prompt wake-ups.
    pub fn new(pool: PgPool) -> Self {
        let options = (!pgflow_db::pool::pooler_mode()).then(|| (*pool.connect_options()).clone());
        Client {
            pool,
            events: RunEvents::new(options),
        }
    }

    /// A client whose listener connects with `listen` instead of the pool's
    /// options: for a pool that goes through a transaction-mode pooler
    /// (PgBouncer), which does not deliver notifications, give the direct
    /// server address here.
    pub fn with_listen_options(pool: PgPool, listen: PgConnectOptions) -> Self {
        Client {
            pool,
            events: RunEvents::new(Some(listen)),
        }
    }

    /// The pool this client uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a run of `flow_slug` with `input` serialized to JSON.
    pub async fn start_flow<I: Serialize + ?Sized>(
        &self,
        flow_slug: &str,
        input: &I,
    ) -> Result<RunHandle, ClientError> {
        let input = serde_json::to_value(input).map_err(ClientError::Input)?;
        let run = api::start_flow(&self.pool, flow_slug, &input, None)
            .await
            .map_err(|e| {
                if is_missing_flow(&e) {
                    ClientError::FlowNotFound(flow_slug.to_string())
                } else {
                    e.into()
                }
            })?;
        Ok(self.run(run.run_id))
    }

    /// A handle on an existing run.
    pub fn run(&self, run_id: Uuid) -> RunHandle {
        RunHandle {
            run_id,
            pool: self.pool.clone(),
            events: Arc::clone(&self.events),
        }
    }

    /// The run with all of its step states; `None` for an unknown run.
    pub async fn get_run(&self, run_id: Uuid) -> Result<Option<RunWithStates>, ClientError> {
        Ok(api::get_run_with_states(&self.pool, run_id).await?)
    }

    /// Cancels a started run; `true` when this call cancelled it.
    pub async fn cancel_run(&self, run_id: Uuid) -> Result<bool, ClientError> {
        Ok(api::cancel_run(&self.pool, run_id).await?)
    }

    /// Resumes a failed run where it failed; `true` when it was resumed.
    pub async fn retry_run(&self, run_id: Uuid) -> Result<bool, ClientError> {
        Ok(api::retry_run(&self.pool, run_id).await?)
    }
}

/// A run started by (or looked up through) a [`Client`].
#[derive(Debug, Clone)]
pub struct RunHandle {
    run_id: Uuid,
    pool: PgPool,
    events: Arc<RunEvents>,
}

impl RunHandle {
    /// The run id.
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// Waits until the run is terminal and returns its output (the object
    /// of leaf step outputs) as `O`. A failed run gives
    /// [`ClientError::RunFailed`] listing each failed step's error; a
    /// cancelled one [`ClientError::RunCancelled`]. Wrap in
    /// `tokio::time::timeout` to bound the wait.
    pub async fn wait<O: DeserializeOwned>(&self) -> Result<O, ClientError> {
        let run = self.wait_terminal().await?;
        match run.status {
            RunStatus::Completed => serde_json::from_value(run.output.unwrap_or(Value::Null))
                .map_err(|source| ClientError::Output {
                    run_id: self.run_id,
                    source,
                }),
            RunStatus::Cancelled => Err(ClientError::RunCancelled(self.run_id)),
            RunStatus::Failed | RunStatus::Started => {
                let steps = api::failed_steps(&self.pool, self.run_id)
                    .await?
                    .into_iter()
                    .map(|(step_slug, error_message)| FailedStep {
                        step_slug,
                        error_message,
                    })
                    .collect();
                Err(ClientError::RunFailed {
                    run_id: self.run_id,
                    steps,
                })
            }
        }
    }

    /// Waits until the run is terminal and returns its row, whatever the
    /// status. Woken by the client's shared listener on `pgflow_events`
    /// (one connection per [`Client`], outside the pool) and re-reads the
    /// row at least every second anyway, so lost notifications (during a
    /// reconnect, or behind a pooler that drops LISTEN) only cost latency.
    /// Connection errors are retried; a pool that stays exhausted
    /// ([`MAX_POOL_TIMEOUTS`] acquire timeouts in a row) is an error.
    pub async fn wait_terminal(&self) -> Result<RunRow, ClientError> {
        // Subscribe before the first read, so an event between the read and
        // the wait cannot be missed.
        let mut wakes = self.events.subscribe();
        let mut pool_timeouts = 0;
        loop {
            match api::get_run(&self.pool, self.run_id).await {
                Ok(Some(run)) if run.is_terminal() => return Ok(run),
                Ok(Some(_)) => pool_timeouts = 0,
                Ok(None) => return Err(ClientError::RunNotFound(self.run_id)),
                Err(e) if e.is_pool_timeout() => {
                    pool_timeouts += 1;
                    if pool_timeouts >= MAX_POOL_TIMEOUTS {
                        return Err(e.into());
                    }
                    debug!(error = %e, "no pooled connection to read the run; retrying")
                }
                Err(e) if e.is_transient() => {
                    debug!(error = %e, "reading the run failed; retrying")
                }
                Err(e) => return Err(e.into()),
            }
            let fallback = tokio::time::sleep(POLL_FALLBACK);
            tokio::pin!(fallback);
            loop {
                tokio::select! {
                    _ = &mut fallback => break,
                    w = wakes.recv() => match w {
                        Ok(Wake::Run(id)) if id == self.run_id => break,
                        Ok(Wake::Run(_)) => {}
                        // A (re)connect, or too many events to keep up
                        // with: any of them may have been ours.
                        Ok(Wake::All) | Err(RecvError::Lagged(_)) => break,
                        // The hub outlives every handle; poll regardless.
                        Err(RecvError::Closed) => { (&mut fallback).await; break }
                    },
                }
            }
        }
    }
}

/// `start_flow`'s refusal of an unknown flow: the foreign-key error on
/// `runs.flow_slug` it raises before writing anything.
fn is_missing_flow(e: &ApiError) -> bool {
    match e {
        ApiError::Db {
            source: sqlx::Error::Database(db),
            ..
        } => db.constraint() == Some("runs_flow_slug_fkey"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_run_error_lists_steps() {
        let e = ClientError::RunFailed {
            run_id: Uuid::nil(),
            steps: vec![
                FailedStep {
                    step_slug: "a".into(),
                    error_message: Some("boom".into()),
                },
                FailedStep {
                    step_slug: "b".into(),
                    error_message: None,
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "run 00000000-0000-0000-0000-000000000000 failed: step a: boom; step b: (no error message)"
        );
    }
}
