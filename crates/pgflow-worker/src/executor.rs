//! Runs one claimed task: handler with timeout and panic capture, then a
//! report (`complete_task` / `fail_task`) retried through database outages.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use pgflow_db::api::{self, StepTaskRecord};
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info_span, warn, Instrument};
use uuid::Uuid;

use crate::config::Backoff;
use crate::flow::WorkerFlow;
use crate::handler::{RunInputCache, TaskContext};

/// Everything a task execution needs, shared by all tasks of one flow.
pub(crate) struct Executor {
    pub(crate) flow: Arc<WorkerFlow>,
    pub(crate) pool: PgPool,
    pub(crate) worker_id: Uuid,
    pub(crate) run_inputs: Arc<RunInputCache>,
    /// Cancelled when the shutdown grace period has run out: report retries
    /// give up then (the sweeper requeues whatever was not reported).
    pub(crate) hard_stop: CancellationToken,
    pub(crate) max_backoff: Duration,
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl Executor {
    /// Runs the task and reports its outcome. Never panics, never returns an
    /// error: every failure ends as a `fail_task` or a log line.
    pub(crate) async fn run(self: Arc<Self>, task: StepTaskRecord) {
        let span = info_span!(
            "task",
            flow = %self.flow.flow.slug(),
            run_id = %task.run_id,
            step = %task.step_slug,
            task_index = task.task_index,
            msg_id = task.msg_id,
        );
        async move {
            let outcome = self.execute(&task).await;
            self.report(&task, outcome).await;
        }
        .instrument(span)
        .await
    }

    async fn execute(&self, task: &StepTaskRecord) -> Result<Value, String> {
        let Some(handler) = self.flow.handlers.get(&task.step_slug).cloned() else {
            return Err(format!(
                "no handler registered for step {:?} in this worker",
                task.step_slug
            ));
        };
        let input = if self.flow.takes_flow_input(&task.step_slug) {
            task.flow_input.clone().unwrap_or(Value::Null)
        } else {
            task.input.clone()
        };
        let ctx = TaskContext {
            flow_slug: self.flow.flow.slug().into(),
            run_id: task.run_id,
            step_slug: task.step_slug.clone(),
            task_index: task.task_index,
            msg_id: task.msg_id,
            worker_id: self.worker_id,
            pool: self.pool.clone(),
            run_inputs: self.run_inputs.clone(),
        };
        let timeout_secs = self.flow.flow.step_timeout(&task.step_slug).max(1) as u64;
        debug!("handler starting");
        // catch_unwind keeps a panicking handler from taking the worker down;
        // the timeout drops (cancels) a handler that overruns its step timeout.
        let guarded = AssertUnwindSafe(handler(input, ctx)).catch_unwind();
        match tokio::time::timeout(Duration::from_secs(timeout_secs), guarded).await {
            Err(_) => Err(format!(
                "handler timed out: exceeded the step timeout of {timeout_secs}s and was cancelled"
            )),
            Ok(Err(panic)) => Err(format!("handler panicked: {}", panic_message(&*panic))),
            Ok(Ok(Err(failure))) => Err(failure.to_string()),
            Ok(Ok(Ok(output))) => Ok(output),
        }
    }

    /// Reports the outcome. Transient database errors are retried with
    /// backoff until the report lands or the shutdown grace runs out; both
    /// SQL functions are idempotent, so a retry after an unseen commit is
    /// harmless.
    async fn report(&self, task: &StepTaskRecord, mut outcome: Result<Value, String>) {
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            let result = match &outcome {
                Ok(output) => {
                    api::complete_task(
                        &self.pool,
                        task.run_id,
                        &task.step_slug,
                        task.task_index,
                        output,
                    )
                    .await
                }
                Err(message) => {
                    api::fail_task(
                        &self.pool,
                        task.run_id,
                        &task.step_slug,
                        task.task_index,
                        message,
                    )
                    .await
                }
            };
            match result {
                Ok(row) => {
                    match &outcome {
                        Ok(_) => debug!("task completed"),
                        Err(message) => warn!(
                            error = %message,
                            status = row.as_ref().map(|r| r.status.as_str()).unwrap_or("unknown"),
                            "task attempt failed"
                        ),
                    }
                    return;
                }
                Err(e) if e.is_transient() => {
                    warn!(error = %e, "reporting the task failed; retrying");
                    tokio::select! {
                        _ = self.hard_stop.cancelled() => {
                            error!(error = %e, "shutdown grace expired before the task could be reported; \
                                   the stalled-task sweeper will requeue it");
                            return;
                        }
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
                Err(e) => {
                    if outcome.is_ok() {
                        // The database rejected the output itself (e.g. a map
                        // child needs an array): record why as a failure
                        // rather than leaving the task started.
                        error!(error = %e, "complete_task rejected the output; failing the task instead");
                        outcome = Err(format!("complete_task rejected the handler output: {e}"));
                        continue;
                    }
                    error!(error = %e, "fail_task failed; the stalled-task sweeper will requeue the task");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 1");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "static");
    }
}
