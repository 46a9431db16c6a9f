//! Worker settings.

use std::time::Duration;

/// What the worker does with its flow definitions at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileMode {
    /// `ensure_flow_compiled(..., allow_data_loss => true)`: a changed shape
    /// drops the flow **with all its runs** and recompiles it. For local
    /// development only.
    Development,
    /// `ensure_flow_compiled(..., allow_data_loss => false)`: a changed shape
    /// makes the worker refuse to start (use a new flow slug instead).
    Production,
    /// Do not touch definitions; the flows must already exist.
    Skip,
}

/// Worker settings. Defaults follow the edge worker (SPEC §5) except where
/// noted.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How flow definitions are compiled at startup. Default: `Production`.
    pub compile_mode: CompileMode,
    /// `workers.function_name` for every worker row this process registers;
    /// operators deprecate workers by this name.
    pub function_name: String,
    /// Most messages read per poll. Default 10.
    pub batch_size: usize,
    /// Most tasks in flight per flow. Default 10. The poller reads again as
    /// soon as a slot frees up instead of waiting for the whole batch.
    pub max_concurrent: usize,
    /// Visibility timeout set by the read, in seconds; `start_tasks` then
    /// extends it to the step timeout + 2. Default 5.
    pub visibility_timeout: i32,
    /// Wake up on `pg_notify('pgflow_tasks', <flow slug>)` (sent whenever
    /// tasks are queued) instead of long-polling. Default `true`. Costs one
    /// extra connection per worker process (not taken from the pool). With
    /// `false` the worker long-polls with `pgmq.read_with_poll`.
    pub listen: bool,
    /// With `listen`: how often an idle worker reads its queue anyway, to
    /// pick up what no notification announces (a message whose visibility
    /// timeout ran out, a retry or start delay scheduled by another worker).
    /// Without `listen`: how long one `read_with_poll` waits for messages.
    /// Default 5 s.
    pub max_poll_seconds: i32,
    /// Poll interval inside `read_with_poll` (only used without `listen`).
    /// Default 100 ms.
    pub poll_interval_ms: i32,
    /// Most successful results reported in one `pgflow.complete_tasks` call.
    /// Results are buffered per flow and flushed as soon as the previous
    /// flush returns (no waiting timer), so an idle worker reports a lone
    /// task at once and a busy one pays one round-trip and one commit per
    /// batch. `1` reports every task with its own `complete_task`.
    /// Default 50.
    pub completion_batch_size: usize,
    /// Heartbeat period. Default 5 s.
    pub heartbeat_interval: Duration,
    /// Stalled-task sweep period (one worker fleet-wide runs each sweep);
    /// `None` disables this process's sweeper. Default 5 s.
    pub sweep_interval: Option<Duration>,
    /// How long in-flight tasks may take to finish after shutdown starts.
    /// Default 30 s.
    pub shutdown_grace: Duration,
    /// Upper bound of the backoff after database errors. Default 5 s.
    pub max_backoff: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            compile_mode: CompileMode::Production,
            function_name: "pgflow-worker".to_string(),
            batch_size: 10,
            max_concurrent: 10,
            visibility_timeout: 5,
            listen: true,
            max_poll_seconds: 5,
            poll_interval_ms: 100,
            completion_batch_size: 50,
            heartbeat_interval: Duration::from_secs(5),
            sweep_interval: Some(Duration::from_secs(5)),
            shutdown_grace: Duration::from_secs(30),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Exponential backoff for database errors: 100 ms doubling up to a cap.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const START: Duration = Duration::from_millis(100);

    pub(crate) fn new(max: Duration) -> Self {
        Backoff {
            next: Self::START,
            max,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::START;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let got: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
