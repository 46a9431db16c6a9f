//! Runs one claimed task: handler with timeout and panic capture, then a
//! report (`complete_task` / `fail_task`) retried through database outages.
//!
//! Successful results go through a per-flow buffer when batching is on:
//! [`Executor::report_loop`] takes whatever has accumulated (up to the batch
//! size) and reports it with one `pgflow.complete_tasks` call, then takes the
//! next batch as soon as that call returns. There is no linger timer: a lone
//! result is reported at once, and under load the batches fill while the
//! previous call is in flight. When a batch is refused for a reason other
//! than a transient error, its results are reported one by one instead.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use pgflow_db::api::{self, ClaimedTask};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info_span, warn, Instrument, Span};
use uuid::Uuid;

use crate::flow::WorkerFlow;
use crate::handler::{RunInputCache, TaskContext};
use crate::metrics::{Outcome, WorkerMetrics};
use crate::timing::{self, WAKE_MARGIN};
use crate::wakeup::Wakeup;

/// A successful result waiting in the flow's result buffer.
pub(crate) struct Completed {
    task: ClaimedTask,
    output: Value,
    span: Span,
}

/// The receiving end of a flow's result buffer (see [`Executor::report_loop`]).
pub(crate) type CompletionReceiver = mpsc::Receiver<Completed>;

/// A result buffer for a flow: the sender goes into the [`Executor`], the
/// receiver to the poll loop, which runs [`Executor::report_loop`].
pub(crate) fn completion_buffer(capacity: usize) -> (mpsc::Sender<Completed>, CompletionReceiver) {
    mpsc::channel(capacity.max(1))
}

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
    /// The flow's result buffer; `None` reports every result directly.
    pub(crate) completions: Option<mpsc::Sender<Completed>>,
    /// The flow's poller wake-ups (with `listen`): a retry scheduled by
    /// `fail_task` sets a timer for when its message becomes visible.
    pub(crate) wakeup: Option<Arc<Wakeup>>,
    /// Opt-in metrics ([`WorkerConfig::metrics`](crate::WorkerConfig::metrics)).
    pub(crate) metrics: Option<WorkerMetrics>,
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
    pub(crate) async fn run(self: Arc<Self>, task: ClaimedTask) {
        let span = info_span!(
            "task",
            flow = %self.flow.flow.slug(),
            run_id = %task.run_id,
            step = %task.step_slug,
            task_index = task.task_index,
            msg_id = task.msg_id,
            attempt = task.attempts_count,
        );
        async move {
            let started = std::time::Instant::now();
            if let Some(m) = &self.metrics {
                m.handler_started(self.flow.flow.slug());
            }
            let executed = self.execute(&task).await;
            if let Some(m) = &self.metrics {
                m.handler_finished(self.flow.flow.slug(), &task.step_slug, started.elapsed());
            }
            let (outcome, retry_after) = match executed {
                Ok(output) => (Ok(output), None),
                Err((message, retry_after)) => (Err(message), retry_after),
            };
            match (outcome, &self.completions) {
                (Ok(output), Some(buffer)) => {
                    let done = Completed {
                        task,
                        output,
                        span: Span::current(),
                    };
                    // Waits while the buffer is full (back-pressure on the
                    // poller); the buffer only closes once every task is done.
                    if let Err(mpsc::error::SendError(done)) = buffer.send(done).await {
                        self.report(&done.task, Ok(done.output), None).await;
                    }
                }
                (outcome, _) => self.report(&task, outcome, retry_after).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Reports buffered results in batches until `tasks_done` fires and the
    /// buffer is empty. See the module docs.
    pub(crate) async fn report_loop(
        self: Arc<Self>,
        mut rx: CompletionReceiver,
        max_batch: usize,
        tasks_done: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(max_batch);
        loop {
            let first = tokio::select! {
                biased;
                next = rx.recv() => next,
                // Every task has finished: what is left is all there will be.
                _ = tasks_done.cancelled() => rx.try_recv().ok(),
            };
            let Some(first) = first else { return };
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.report_batch(&mut batch).await;
            batch.clear();
        }
    }

    /// Reports a batch of results with `complete_tasks` (one by one for a
    /// single result or when the batch is refused).
    async fn report_batch(&self, batch: &mut [Completed]) {
        if let [one] = batch {
            let output = std::mem::take(&mut one.output);
            return self
                .report(&one.task, Ok(output), None)
                .instrument(one.span.clone())
                .await;
        }
        let items: Vec<api::Completion<'_>> = batch
            .iter()
            .map(|c| api::Completion {
                run_id: c.task.run_id,
                step_slug: &c.task.step_slug,
                task_index: c.task.task_index,
                output: &c.output,
            })
            .collect();
        let mut backoff = timing::backoff(self.max_backoff);
        loop {
            match api::complete_tasks(&self.pool, &items).await {
                Ok(_) => {
                    debug!(flow = %self.flow.flow.slug(), tasks = items.len(), "tasks completed");
                    if let Some(m) = &self.metrics {
                        for c in batch.iter() {
                            m.reported(
                                self.flow.flow.slug(),
                                &c.task.step_slug,
                                Outcome::Completed,
                                1,
                            );
                        }
                    }
                    return;
                }
                Err(e) if e.is_transient() => {
                    warn!(error = %e, tasks = items.len(), "reporting a batch of results failed; retrying");
                    tokio::select! {
                        _ = self.hard_stop.cancelled() => {
                            error!(error = %e, tasks = items.len(), "shutdown grace expired before the results could be reported; \
                                   the stalled-task sweeper will requeue the tasks");
                            return;
                        }
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
                Err(e) => {
                    // One element was refused (e.g. an output the database
                    // rejects): the batch rolled back; report one by one so
                    // only that task fails.
                    warn!(error = %e, tasks = items.len(), "complete_tasks refused the batch; reporting its results one by one");
                    break;
                }
            }
        }
        drop(items);
        for one in batch.iter_mut() {
            let output = std::mem::take(&mut one.output);
            self.report(&one.task, Ok(output), None)
                .instrument(one.span.clone())
                .await;
        }
    }

    /// Runs the handler; a failure carries the delay a server asked for.
    /// The timeout is the step's as the database returned it with the task
    /// (not this worker's definition), so a changed `opt_timeout` applies
    /// to the next task without a restart.
    async fn execute(&self, task: &ClaimedTask) -> Result<Value, (String, Option<Duration>)> {
        let Some(handler) = self.flow.handlers.get(&task.step_slug).cloned() else {
            return Err((
                format!(
                    "no handler registered for step {:?} in this worker",
                    task.step_slug
                ),
                None,
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
            attempt: task.attempts_count,
            timeout: task.timeout(),
            worker_id: self.worker_id,
            pool: self.pool.clone(),
            run_inputs: self.run_inputs.clone(),
        };
        let timeout = task.timeout();
        debug!("handler starting");
        // catch_unwind keeps a panicking handler from taking the worker down;
        // the timeout drops (cancels) a handler that overruns its step timeout.
        let guarded = AssertUnwindSafe(handler(input, ctx)).catch_unwind();
        match tokio::time::timeout(timeout, guarded).await {
            Err(_) => Err((
                format!(
                    "handler timed out: exceeded the step timeout of {}s and was cancelled",
                    timeout.as_secs()
                ),
                None,
            )),
            Ok(Err(panic)) => Err((
                format!("handler panicked: {}", panic_message(&*panic)),
                None,
            )),
            Ok(Ok(Err(failure))) => Err((failure.to_string(), failure.retry_after())),
            Ok(Ok(Ok(output))) => Ok(output),
        }
    }

    /// Reports the outcome. Transient database errors are retried with
    /// backoff until the report lands or the shutdown grace runs out; both
    /// SQL functions are idempotent, so a retry after an unseen commit is
    /// harmless.
    async fn report(
        &self,
        task: &ClaimedTask,
        mut outcome: Result<Value, String>,
        retry_after: Option<Duration>,
    ) {
        let mut backoff = timing::backoff(self.max_backoff);
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
                    if let Some(m) = &self.metrics {
                        let end = match (&outcome, row.as_ref().map(|r| r.status)) {
                            (Ok(_), _) => Outcome::Completed,
                            (Err(_), Some(api::TaskStatus::Queued)) => Outcome::Retried,
                            (Err(_), _) => Outcome::Failed,
                        };
                        m.reported(self.flow.flow.slug(), &task.step_slug, end, 1);
                    }
                    match &outcome {
                        Ok(_) => debug!("task completed"),
                        Err(message) => {
                            warn!(
                                error = %message,
                                status = row.as_ref().map(|r| r.status.as_str()).unwrap_or("unknown"),
                                "task attempt failed"
                            );
                            self.postpone_retry(task, row.as_ref(), retry_after).await;
                            self.wake_for_retry(task, row.as_ref(), retry_after);
                        }
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

impl Executor {
    /// A server asked for more time than the step's backoff (`Retry-After`
    /// on a 429 or 503): keep the requeued message hidden that long. Best
    /// effort: when this fails the retry merely comes sooner. The backoff
    /// compared with is the one the database returned with the task.
    async fn postpone_retry(
        &self,
        task: &ClaimedTask,
        row: Option<&api::TaskRow>,
        retry_after: Option<Duration>,
    ) {
        let (Some(row), Some(wait)) = (row, retry_after) else {
            return;
        };
        if row.status != api::TaskStatus::Queued || wait <= task.retry_delay() {
            return;
        }
        let secs = i32::try_from(wait.as_secs_f64().ceil() as u64)
            .unwrap_or(i32::MAX)
            .min(api::MAX_POSTPONE_SECS);
        // Through pgflow.postpone_task_retry (SECURITY DEFINER): the worker
        // role has no pgmq privileges.
        if let Err(e) = api::postpone_task_retry(
            &self.pool,
            task.run_id,
            &task.step_slug,
            task.task_index,
            secs,
        )
        .await
        {
            warn!(error = %e, "could not postpone the retry as the server asked");
        }
    }

    /// A retried task's message becomes visible after the backoff without
    /// any notification: have the poller look again then.
    fn wake_for_retry(
        &self,
        task: &ClaimedTask,
        row: Option<&api::TaskRow>,
        retry_after: Option<Duration>,
    ) {
        let (Some(row), Some(wakeup)) = (row, &self.wakeup) else {
            return;
        };
        if row.status == api::TaskStatus::Queued {
            let delay = task.retry_delay().max(retry_after.unwrap_or_default());
            wakeup.wake_at(tokio::time::Instant::now() + delay + WAKE_MARGIN);
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
