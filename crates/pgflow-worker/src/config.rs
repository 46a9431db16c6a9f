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
    /// Visibility timeout set by the read (whole seconds; at least 1 s);
    /// `start_tasks` then extends it to the step timeout + 2. Default 5 s.
    pub visibility_timeout: Duration,
    /// Wake up on `pg_notify('pgflow_tasks', <flow slug>)` (sent whenever
    /// tasks are queued) instead of long-polling. Default `true`. Costs one
    /// extra connection per worker process (not taken from the pool). With
    /// `false` the worker long-polls with `pgflow.read_with_poll`.
    pub listen: bool,
    /// With `listen`: where the listener connects instead of the pool's
    /// options. A pool that goes through a pooler in transaction mode
    /// (PgBouncer) never receives notifications; give the database's
    /// direct address here. In pooler mode (`pooler=transaction`, see
    /// `pgflow_db::pool`) with `None` the worker does not listen and
    /// long-polls as with `listen = false` (logged once at start).
    pub listen_options: Option<sqlx::postgres::PgConnectOptions>,
    /// With `listen`: how often an idle worker reads its queue anyway, to
    /// pick up what no notification announces (a message whose visibility
    /// timeout ran out, a retry or start delay scheduled by another worker).
    /// Without `listen`: how long one `read_with_poll` waits for messages.
    /// Whole seconds, at least 1 s. Default 5 s.
    pub max_poll: Duration,
    /// Poll interval inside `read_with_poll` (only used without `listen`).
    /// Default 100 ms.
    pub poll_interval: Duration,
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
    /// How long this worker may go without a heartbeat before the fleet's
    /// stalled-task sweep presumes it dead and requeues its tasks. `None`
    /// (the default) keeps the database's `pgflow.config.dead_worker_after`
    /// (15 s unless the owner changed it); a value only counts when longer
    /// than that, since the owner's setting is the floor (a worker cannot make
    /// the sweep stricter). 1 s to 1 day. Keep it well above
    /// `heartbeat_interval`.
    pub dead_worker_after: Option<Duration>,
    /// Prometheus metrics this worker updates (tasks by outcome, handler
    /// durations, claims, tasks in flight); `None` (the default) keeps none.
    /// See [`WorkerMetrics`](crate::WorkerMetrics).
    pub metrics: Option<crate::WorkerMetrics>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            compile_mode: CompileMode::Production,
            function_name: "pgflow-worker".to_string(),
            batch_size: 10,
            max_concurrent: 10,
            visibility_timeout: Duration::from_secs(5),
            listen: true,
            listen_options: None,
            max_poll: Duration::from_secs(5),
            poll_interval: Duration::from_millis(100),
            completion_batch_size: 50,
            heartbeat_interval: Duration::from_secs(5),
            sweep_interval: Some(Duration::from_secs(5)),
            shutdown_grace: Duration::from_secs(30),
            max_backoff: Duration::from_secs(5),
            metrics: None,
            dead_worker_after: None,
        }
    }
}

/// `d` in whole seconds for an SQL `integer` argument: at least 1, at most
/// `i32::MAX` (pgmq takes seconds as integers).
pub(crate) fn whole_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// `d` in whole milliseconds for an SQL `integer` argument (at least 1).
pub(crate) fn whole_millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis().max(1)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_sql_integers() {
        assert_eq!(whole_secs(Duration::from_millis(1500)), 1);
        assert_eq!(whole_secs(Duration::ZERO), 1);
        assert_eq!(whole_secs(Duration::from_secs(u64::MAX)), i32::MAX);
        assert_eq!(whole_millis(Duration::from_millis(100)), 100);
    }
}
