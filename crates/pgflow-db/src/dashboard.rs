//! Queries of the web dashboard (`crates/pgflow-dashboard`) and its `/metrics`.
//!
//! Built for pages that must stay fast on big runs: lists are keyset-paginated
//! with a hard `LIMIT`, progress comes from `step_states` (never from a scan of
//! a map's tasks), and long JSON or error text comes back as a preview of at
//! most `preview_chars` characters plus its full length. Every filter is a
//! bound parameter. Each query lives in `queries/dashboard_*.sql`. Rows derive
//! `Serialize`: the dashboard's JSON endpoints return them as they are.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), pgflow_db::api::ApiError> {
//! use pgflow_db::dashboard::{list_runs, RunFilter};
//! let page = list_runs(&pool, &RunFilter { status: Some("failed".into()), ..RunFilter::default() }).await?;
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::api::ApiError;

fn db(function: &'static str) -> impl FnOnce(sqlx::Error) -> ApiError {
    move |source| ApiError::Db { function, source }
}

/// The channel every run and step transition is notified on.
pub const EVENTS_CHANNEL: &str = "pgflow_events";

/// Filters and page position of [`list_runs`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// Only this flow.
    pub flow_slug: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only runs started at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only runs started before this.
    pub until: Option<DateTime<Utc>>,
    /// The `(started_at, run_id)` of the previous page's last row.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// Page size (callers cap it).
    pub limit: i64,
}

/// A line of the run list.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunListRow {
    /// The run id.
    pub run_id: Uuid,
    /// Its flow.
    pub flow_slug: String,
    /// `started`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it completed, failed or was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (to now while started).
    pub duration_secs: f64,
    /// Steps completed or skipped.
    pub steps_done: i32,
    /// All steps.
    pub steps_total: i32,
}

/// A run's header on its page: status, timing, progress, previews.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunOverview {
    /// The run id.
    pub run_id: Uuid,
    /// Its flow.
    pub flow_slug: String,
    /// `started`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it completed, failed or was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (to now while started).
    pub duration_secs: f64,
    /// The input's JSON text, cut to the preview length.
    pub input_preview: String,
    /// Bytes of the input's full JSON text.
    pub input_len: i32,
    /// The output's JSON text, cut to the preview length.
    pub output_preview: Option<String>,
    /// Bytes of the output's full JSON text.
    pub output_len: Option<i32>,
    /// Steps completed or skipped.
    pub steps_done: i32,
    /// All steps.
    pub steps_total: i32,
    /// Tasks completed (from the steps' counters).
    pub tasks_done: i64,
    /// Tasks planned by the steps that know their count.
    pub tasks_planned: i64,
    /// Progress, 0 to 100: finished steps count whole, running ones by their
    /// share of completed tasks.
    pub percent: f64,
}

/// One step of a run with its definition, as the run page and DAG need it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunStepRow {
    /// The step slug.
    pub step_slug: String,
    /// Position in the flow.
    pub step_index: i32,
    /// `single` or `map`.
    pub step_type: String,
    /// Parent step slugs, sorted.
    pub dependencies: Vec<String>,
    /// `if` condition.
    pub required_input_pattern: Option<Value>,
    /// `ifNot` condition.
    pub forbidden_input_pattern: Option<Value>,
    /// What an unmet condition does.
    pub when_unmet: String,
    /// What running out of attempts does.
    pub when_exhausted: String,
    /// `created`, `started`, `completed`, `failed`, `skipped` or `cancelled`.
    pub status: String,
    /// Planned tasks (`None` until known).
    pub initial_tasks: Option<i32>,
    /// Tasks not yet completed (`None` until started).
    pub remaining_tasks: Option<i32>,
    /// Tasks completed.
    pub tasks_done: i32,
    /// The most attempts any of its tasks used.
    pub attempts: i32,
    /// When the step state was created (with the run).
    pub created_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed, failed, was skipped or cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (to now while started).
    pub duration_secs: Option<f64>,
    /// The step's error, else its latest task error.
    pub error_message: Option<String>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// The output's JSON text, cut to the preview length.
    pub output_preview: Option<String>,
    /// Bytes of the output's full JSON text.
    pub output_len: Option<i32>,
}

/// Filters and page position of [`run_tasks`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    /// Only this step.
    pub step_slug: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// The `(step_slug, task_index)` of the previous page's last row.
    pub after: Option<(String, i32)>,
    /// Page size (callers cap it).
    pub limit: i64,
}

/// One task on a run page.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TaskListRow {
    /// Its step.
    pub step_slug: String,
    /// Index in the step (the element index for a map).
    pub task_index: i32,
    /// `queued`, `started`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts started.
    pub attempts_count: i32,
    /// The worker that ran its last attempt.
    pub last_worker_id: Option<Uuid>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When its last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed or failed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds of its last attempt (to now while started).
    pub duration_secs: Option<f64>,
    /// The error, cut to the preview length.
    pub error_preview: Option<String>,
    /// Bytes of the full error.
    pub error_len: Option<i32>,
    /// The output's JSON text, cut to the preview length.
    pub output_preview: Option<String>,
    /// Bytes of the output's full JSON text.
    pub output_len: Option<i32>,
}

/// One task with its full output and error.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TaskDetail {
    /// Its step.
    pub step_slug: String,
    /// Index in the step.
    pub task_index: i32,
    /// Its status.
    pub status: String,
    /// Attempts started.
    pub attempts_count: i32,
    /// The output.
    pub output: Option<Value>,
    /// The error.
    pub error_message: Option<String>,
}

/// A worker with its liveness.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkerRow {
    /// The worker id.
    pub worker_id: Uuid,
    /// The queue (flow slug) it polls.
    pub queue_name: String,
    /// The name it registered under.
    pub function_name: String,
    /// `alive`, `stale`, `deprecated` or `stopped`.
    pub state: String,
    /// When it registered.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_heartbeat_at: DateTime<Utc>,
    /// When it stopped cleanly.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_secs: f64,
    /// Tasks it is running now.
    pub tasks_in_flight: i32,
}

/// A flow's queue.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QueueRow {
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
    /// Messages in the queue's archive.
    pub archived: Option<i64>,
    /// Tasks of this flow currently `started`.
    pub tasks_in_flight: i32,
}

/// Runs of one flow in one status.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunCount {
    /// The flow.
    pub flow_slug: String,
    /// The status.
    pub status: String,
    /// How many runs.
    pub runs: i64,
}

/// Task counters of one step of one flow.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TaskCounts {
    /// The flow.
    pub flow_slug: String,
    /// The step.
    pub step_slug: String,
    /// Attempts started (sum of `attempts_count`).
    pub started: i64,
    /// Tasks completed.
    pub completed: i64,
    /// Tasks failed for good.
    pub failed: i64,
}

/// Live workers of one queue.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkersAlive {
    /// The queue (flow slug).
    pub queue_name: String,
    /// Workers not stopped with a recent heartbeat.
    pub alive: i64,
}

/// One page of runs, newest first.
pub async fn list_runs<'e>(
    ex: impl PgExecutor<'e>,
    filter: &RunFilter,
) -> Result<Vec<RunListRow>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_list_runs.sql"))
        .bind(filter.flow_slug.as_deref())
        .bind(filter.status.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.after.map(|(at, _)| at))
        .bind(filter.after.map(|(_, id)| id))
        .bind(filter.limit)
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.runs"))
}

/// A run's overview; `None` when unknown. Previews hold `preview_chars` characters.
pub async fn run_overview<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    preview_chars: i32,
) -> Result<Option<RunOverview>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_run.sql"))
        .bind(run_id)
        .bind(preview_chars)
        .fetch_optional(ex)
        .await
        .map_err(db("pgflow.runs"))
}

/// Every step of a run with its definition and state, in definition order.
pub async fn run_steps<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    preview_chars: i32,
) -> Result<Vec<RunStepRow>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_run_steps.sql"))
        .bind(run_id)
        .bind(preview_chars)
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.step_states"))
}

/// One page of a run's tasks, ordered by step and index.
pub async fn run_tasks<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    filter: &TaskFilter,
    preview_chars: i32,
) -> Result<Vec<TaskListRow>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_run_tasks.sql"))
        .bind(run_id)
        .bind(filter.step_slug.as_deref())
        .bind(filter.status.as_deref())
        .bind(filter.after.as_ref().map(|(slug, _)| slug.as_str()))
        .bind(filter.after.as_ref().map(|(_, index)| *index))
        .bind(filter.limit)
        .bind(preview_chars)
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.step_tasks"))
}

/// One task in full; `None` when unknown.
pub async fn task<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    step_slug: &str,
    task_index: i32,
) -> Result<Option<TaskDetail>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_task.sql"))
        .bind(run_id)
        .bind(step_slug)
        .bind(task_index)
        .fetch_optional(ex)
        .await
        .map_err(db("pgflow.step_tasks"))
}

/// Workers, newest first, at most `limit`; stale after `stale_after_secs`
/// without a heartbeat.
pub async fn workers<'e>(
    ex: impl PgExecutor<'e>,
    stale_after_secs: f64,
    limit: i64,
) -> Result<Vec<WorkerRow>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_workers.sql"))
        .bind(stale_after_secs)
        .bind(limit)
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.workers"))
}

/// Every flow's queue, by slug.
pub async fn queues<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<QueueRow>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_queues.sql"))
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.queue_archive_counts"))
}

/// Runs per flow and status.
pub async fn run_counts<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<RunCount>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_metrics_runs.sql"))
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.runs"))
}

/// Task counters per flow and step.
pub async fn task_counts<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<TaskCounts>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_metrics_tasks.sql"))
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.step_tasks"))
}

/// Live workers per queue (heartbeat within `stale_after_secs`).
pub async fn workers_alive<'e>(
    ex: impl PgExecutor<'e>,
    stale_after_secs: f64,
) -> Result<Vec<WorkersAlive>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_metrics_workers.sql"))
        .bind(stale_after_secs)
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.workers"))
}

/// For each started run among `run_ids`, a fingerprint of its steps'
/// statuses and remaining task counts: it changes when a map task completes,
/// which sends no event.
pub async fn run_fingerprints<'e>(
    ex: impl PgExecutor<'e>,
    run_ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, ApiError> {
    sqlx::query_as(include_str!("../queries/dashboard_run_fingerprints.sql"))
        .bind(run_ids)
        .fetch_all(ex)
        .await
        .map_err(db("pgflow.step_states"))
}

/// A listener on [`EVENTS_CHANNEL`] (`LISTEN pgflow_events`). It holds one
/// connection of `pool` for as long as it lives and reconnects through it,
/// so give it a pool of its own with one connection.
pub async fn listen_events(pool: &PgPool) -> Result<PgListener, ApiError> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(db("LISTEN pgflow_events"))?;
    listener
        .listen(EVENTS_CHANNEL)
        .await
        .map_err(db("LISTEN pgflow_events"))?;
    Ok(listener)
}
