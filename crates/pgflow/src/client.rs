//! Starting runs, waiting for them, inspecting them.

use std::fmt;
use std::time::Duration;

use pgflow_db::api::{self, ApiError, RunRow, RunStatus, RunWithStates};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tracing::{debug, warn};
use uuid::Uuid;

/// The channel the SQL core sends run and step events on.
const EVENTS_CHANNEL: &str = "pgflow_events";

/// How often [`RunHandle::wait`] re-reads the run even without a
/// notification (notifications are lost while the listener reconnects).
const POLL_FALLBACK: Duration = Duration::from_secs(1);

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
#[derive(Debug, Clone)]
pub struct Client {
    pool: PgPool,
}

impl Client {
    /// A client on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Client { pool }
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
        let run = api::start_flow(&self.pool, flow_slug, &input, None).await?;
        Ok(self.run(run.run_id))
    }

    /// A handle on an existing run.
    pub fn run(&self, run_id: Uuid) -> RunHandle {
        RunHandle {
            run_id,
            pool: self.pool.clone(),
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
    /// status. Listens on `pgflow_events` for this run's `run:*` events and
    /// re-reads the row at least every second, so lost notifications (e.g.
    /// during a reconnect) only cost latency. Transient database errors are
    /// retried.
    pub async fn wait_terminal(&self) -> Result<RunRow, ClientError> {
        // Listen before the first read, so an event between the read and
        // the LISTEN cannot be missed.
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(EVENTS_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    warn!(error = %e, "LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                warn!(error = %e, "cannot open a listener connection; polling only");
                None
            }
        };
        let topic = format!("pgflow:run:{}", self.run_id);
        loop {
            match api::get_run(&self.pool, self.run_id).await {
                Ok(Some(run)) if run.is_terminal() => return Ok(run),
                Ok(Some(_)) => {}
                Ok(None) => return Err(ClientError::RunNotFound(self.run_id)),
                Err(e) if e.is_transient() => {
                    debug!(error = %e, "reading the run failed; retrying")
                }
                Err(e) => return Err(e.into()),
            }
            let fallback = tokio::time::sleep(POLL_FALLBACK);
            tokio::pin!(fallback);
            match listener.as_mut() {
                None => fallback.await,
                Some(l) => loop {
                    tokio::select! {
                        _ = &mut fallback => break,
                        n = l.try_recv() => match n {
                            Ok(Some(n)) if is_run_event(n.payload(), &topic) => break,
                            Ok(Some(_)) => {}
                            // Connection lost: the next try_recv reconnects;
                            // wait for the fallback tick meanwhile.
                            Ok(None) => { (&mut fallback).await; break; }
                            Err(e) => {
                                debug!(error = %e, "listener failed; polling only");
                                listener = None;
                                break;
                            }
                        },
                    }
                },
            }
        }
    }
}

/// True for a `run:*` event envelope on this run's topic.
fn is_run_event(payload: &str, topic: &str) -> bool {
    // Cheap pre-filter: most events on the channel are for other runs.
    if !payload.contains(topic) {
        return false;
    }
    match serde_json::from_str::<Value>(payload) {
        Ok(v) => {
            v.get("topic").and_then(Value::as_str) == Some(topic)
                && v.get("event")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.starts_with("run:"))
        }
        // Unparseable (e.g. truncated) but on our topic: re-read the row.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_event_filter() {
        let topic = "pgflow:run:1";
        assert!(is_run_event(
            r#"{"topic":"pgflow:run:1","event":"run:completed","payload":{}}"#,
            topic
        ));
        assert!(!is_run_event(
            r#"{"topic":"pgflow:run:1","event":"step:a:completed","payload":{}}"#,
            topic
        ));
        assert!(!is_run_event(
            r#"{"topic":"pgflow:run:2","event":"run:completed","payload":{}}"#,
            topic
        ));
    }

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
