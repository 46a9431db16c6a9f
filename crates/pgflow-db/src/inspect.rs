//! Read-mostly queries for operators: what the `pgflow` CLI lists and shows
//! (flows, runs, per-step progress, workers, queues) plus its two
//! maintenance calls (delete a flow, prune old data).
//!
//! Kept apart from [`crate::api`], which is the worker/client protocol: these
//! queries read tables and views directly and may change shape with the CLI.
//! As everywhere in this crate, each query lives in `queries/inspect_*.sql`
//! and is embedded with `include_str!`. Rows derive `Serialize`, so the CLI
//! prints them as JSON as-is.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), pgflow_db::api::ApiError> {
//! for flow in pgflow_db::inspect::list_flows(&pool).await? {
//!     println!("{} ({} steps)", flow.flow_slug, flow.step_count);
//! }
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::api::{call, ApiError, OrApi};
use crate::status::{RunStatus, StepStatus};

/// A flow with its options and how many runs it has per status.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct FlowSummary {
    /// The flow slug (also its queue name).
    pub flow_slug: String,
    /// Default attempts per task.
    pub opt_max_attempts: i32,
    /// Default retry base delay, seconds.
    pub opt_base_delay: i32,
    /// Default task timeout, seconds.
    pub opt_timeout: i32,
    /// When the flow was created.
    pub created_at: DateTime<Utc>,
    /// Number of steps.
    pub step_count: i32,
    /// Runs still going.
    pub runs_started: i32,
    /// Runs that completed.
    pub runs_completed: i32,
    /// Runs that failed.
    pub runs_failed: i32,
    /// Runs that were cancelled.
    pub runs_cancelled: i32,
}

/// One step of a flow definition as stored (`pgflow.steps` plus its parents).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct FlowStep {
    /// The step slug.
    pub step_slug: String,
    /// Position in the flow (topological).
    pub step_index: i32,
    /// `single` or `map`.
    pub step_type: String,
    /// Parent step slugs, sorted.
    pub dependencies: Vec<String>,
    /// Own `maxAttempts`; `None` inherits the flow's.
    pub opt_max_attempts: Option<i32>,
    /// Own `baseDelay`; `None` inherits the flow's.
    pub opt_base_delay: Option<i32>,
    /// Own `timeout`; `None` inherits the flow's.
    pub opt_timeout: Option<i32>,
    /// First-delivery delay in seconds; `None` means 0.
    pub opt_start_delay: Option<i32>,
    /// `if` condition.
    pub required_input_pattern: Option<Value>,
    /// `ifNot` condition.
    pub forbidden_input_pattern: Option<Value>,
    /// `fail`, `skip` or `skip-cascade`.
    pub when_unmet: String,
    /// `fail`, `skip` or `skip-cascade`.
    pub when_exhausted: String,
}

/// A line of `pgflow run list` (from the `pgflow.run_progress` view).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunSummary {
    /// The run id.
    pub run_id: Uuid,
    /// Its flow.
    pub flow_slug: String,
    /// Where the run is in its lifecycle.
    pub status: RunStatus,
    /// Steps completed or skipped.
    pub steps_done: i32,
    /// All steps.
    pub steps_total: i32,
    /// Tasks completed.
    pub tasks_done: i32,
    /// Tasks created so far.
    pub tasks_total: i32,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// Seconds from start to end (to now while started).
    pub duration_secs: f64,
}

/// A run with its timestamps (no step states; see [`run_steps`]).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunDetail {
    /// The run id.
    pub run_id: Uuid,
    /// Its flow.
    pub flow_slug: String,
    /// Where the run is in its lifecycle.
    pub status: RunStatus,
    /// The run input.
    pub input: Value,
    /// Leaf outputs once completed.
    pub output: Option<Value>,
    /// Steps not yet completed or skipped.
    pub remaining_steps: i32,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it completed, failed or was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (to now while started).
    pub duration_secs: f64,
}

impl RunDetail {
    /// True once the run completed, failed or was cancelled.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// The progress of one step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunStep {
    /// The step slug.
    pub step_slug: String,
    /// Position in the flow.
    pub step_index: i32,
    /// `single` or `map`.
    pub step_type: String,
    /// Where the step is in its lifecycle.
    pub status: StepStatus,
    /// Planned task count (`None` for a map whose parent has not finished).
    pub initial_tasks: Option<i32>,
    /// Tasks completed.
    pub tasks_done: i32,
    /// Task rows created so far.
    pub tasks_created: i32,
    /// The most attempts any of its tasks used.
    pub attempts: i32,
    /// When the step started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed, failed, was skipped or cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (to now while started); `None` before start.
    pub duration_secs: Option<f64>,
    /// The step's error, else the latest task error (e.g. before a retry).
    pub error_message: Option<String>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
}

impl RunStep {
    /// Tasks the step will have in total, when known.
    pub fn tasks_total(&self) -> Option<i32> {
        self.initial_tasks.or(if self.tasks_created > 0 {
            Some(self.tasks_created)
        } else {
            None
        })
    }
}

/// A `pgflow.workers` row with its heartbeat age.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkerInfo {
    /// The worker id.
    pub worker_id: Uuid,
    /// The queue (flow slug) it polls.
    pub queue_name: String,
    /// The name operators deprecate workers by.
    pub function_name: String,
    /// When it registered.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_heartbeat_at: DateTime<Utc>,
    /// When it stopped cleanly.
    pub stopped_at: Option<DateTime<Utc>>,
    /// When an operator deprecated it.
    pub deprecated_at: Option<DateTime<Utc>>,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_secs: f64,
    /// Tasks it is running now.
    pub active_tasks: i32,
}

/// A flow's queue depth.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QueueStats {
    /// The flow slug (= queue name).
    pub flow_slug: String,
    /// False when the flow's pgmq queue is missing.
    pub has_queue: bool,
    /// Messages readable now.
    pub visible: Option<i64>,
    /// All live messages (visible or in flight).
    pub total: Option<i64>,
    /// Age of the oldest live message, seconds.
    pub oldest_age_secs: Option<i32>,
    /// Tasks of this flow currently `started`.
    pub tasks_in_flight: i32,
}

/// What [`prune`] removed.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PruneReport {
    /// Finished runs deleted.
    pub runs: i32,
    /// Stale workers deleted.
    pub workers: i32,
    /// Archived queue messages deleted.
    #[sqlx(skip)]
    pub archived_messages: i64,
    /// Everything older than this was pruned.
    pub cutoff: DateTime<Utc>,
}

/// All flows, by slug.
pub async fn list_flows<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<FlowSummary>, ApiError> {
    call!(rows "inspect_list_flows.sql", "pgflow.flows", fetch_all(ex))
}

/// One flow; `None` when unknown.
pub async fn get_flow<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
) -> Result<Option<FlowSummary>, ApiError> {
    call!(rows "inspect_get_flow.sql", "pgflow.flows", fetch_optional(ex), flow_slug)
}

/// The steps of a flow in definition order (empty for an unknown flow).
pub async fn flow_steps<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
) -> Result<Vec<FlowStep>, ApiError> {
    call!(rows "inspect_flow_steps.sql", "pgflow.steps", fetch_all(ex), flow_slug)
}

/// `pgflow.delete_flow_and_data`: drops the queue and deletes the flow with
/// every run. Check the flow exists first: pgmq fails on a missing queue.
pub async fn delete_flow<'e>(ex: impl PgExecutor<'e>, flow_slug: &str) -> Result<(), ApiError> {
    call!(query "inspect_delete_flow.sql", "pgflow.delete_flow_and_data", execute(ex), flow_slug)?;
    Ok(())
}

/// The newest `limit` runs, optionally of one flow and/or status.
pub async fn list_runs<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: Option<&str>,
    status: Option<RunStatus>,
    limit: i64,
) -> Result<Vec<RunSummary>, ApiError> {
    call!(
        rows "inspect_list_runs.sql",
        "pgflow.run_progress",
        fetch_all(ex),
        flow_slug,
        status,
        limit,
    )
}

/// One run with timestamps; `None` when unknown.
pub async fn get_run<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Option<RunDetail>, ApiError> {
    call!(rows "inspect_get_run.sql", "pgflow.runs", fetch_optional(ex), run_id)
}

/// Per-step progress of a run, in definition order.
pub async fn run_steps<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Vec<RunStep>, ApiError> {
    call!(rows "inspect_run_steps.sql", "pgflow.step_states", fetch_all(ex), run_id)
}

/// Workers, newest first; stopped ones only when `include_stopped`.
pub async fn list_workers<'e>(
    ex: impl PgExecutor<'e>,
    include_stopped: bool,
) -> Result<Vec<WorkerInfo>, ApiError> {
    call!(rows "inspect_list_workers.sql", "pgflow.workers", fetch_all(ex), include_stopped)
}

/// Queue depth per flow.
pub async fn queue_stats<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<QueueStats>, ApiError> {
    call!(rows "inspect_queue_stats.sql", "pgmq.metrics_all", fetch_all(ex))
}

/// `pgflow.prune_data_older_than`: deletes finished runs, stale workers and
/// archived messages older than `older_than_secs`; reports what went. One
/// transaction: the archive count is taken just before the prune.
pub async fn prune(pool: &sqlx::PgPool, older_than_secs: f64) -> Result<PruneReport, ApiError> {
    let mut tx = pool.begin().await.or_api("begin")?;
    let archived: i64 = call!(
        scalar "inspect_archived_before.sql",
        "pgmq archives",
        fetch_one(&mut *tx),
        older_than_secs
    )?;
    let mut report: PruneReport = call!(
        rows "inspect_prune.sql",
        "pgflow.prune_data_older_than",
        fetch_one(&mut *tx),
        older_than_secs
    )?;
    tx.commit().await.or_api("commit")?;
    report.archived_messages = archived;
    Ok(report)
}

/// How many workers serve `queue` now: running, not told to stop, with a
/// heartbeat in the last `within_secs` seconds. Zero means a new run of
/// that flow will wait until a worker starts.
pub async fn live_workers<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    within_secs: f64,
) -> Result<i32, ApiError> {
    call!(scalar "inspect_live_workers.sql", "pgflow.workers", fetch_one(ex), queue, within_secs)
}
