//! Tasks: read and claim them, report their outcomes.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::error::{ApiError, OrApi};
use crate::status::TaskStatus;

/// `pgflow.step_task_record`: a task claimed by `start_tasks`, with its input.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepTaskRecord {
    /// The flow.
    pub flow_slug: String,
    /// The run.
    pub run_id: Uuid,
    /// The step.
    pub step_slug: String,
    /// `{}` for a root single step, the deps object for a dependent single
    /// step, the array element for a map step (JSON `null` when the
    /// database has none: the queries coalesce it).
    pub input: Value,
    /// The pgmq message backing this task.
    pub msg_id: i64,
    /// Position within a map step (0 for single steps).
    pub task_index: i32,
    /// The run input, for root single steps only.
    pub flow_input: Option<Value>,
}

/// A task started by [`claim_tasks`] or [`start_worker_tasks`]
/// (`pgflow.worker_task_record`): the [`StepTaskRecord`] plus the attempt
/// number and the step's effective settings (the step's option, else the
/// flow's) as the database had them when the task started. A worker obeys
/// these, not its own flow definition, so changing `pgflow.steps` or
/// `pgflow.flows` options takes effect with the next task, without a
/// restart. Derefs to its [`StepTaskRecord`].
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedTask {
    /// The task and its input.
    #[sqlx(flatten)]
    pub task: StepTaskRecord,
    /// This attempt's number (1 for the first).
    pub attempts_count: i32,
    /// Attempts the task gets in all.
    pub max_attempts: i32,
    /// The step timeout, in seconds: the message stays hidden that long
    /// (+ 2 s) and the worker cancels a handler that runs longer.
    pub timeout_secs: i32,
    /// The retry base delay, in seconds.
    pub base_delay_secs: i32,
    /// Seconds `fail_task` keeps the message hidden if this attempt fails
    /// (`calculate_retry_delay(base_delay, attempts_count)`).
    pub retry_delay_secs: i32,
}

impl ClaimedTask {
    /// The step timeout the handler must finish within (at least 1 s).
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs.max(1) as u64)
    }

    /// How long the task waits before its next attempt if this one fails.
    pub fn retry_delay(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.retry_delay_secs.max(0) as u64)
    }
}

impl std::ops::Deref for ClaimedTask {
    type Target = StepTaskRecord;

    fn deref(&self) -> &StepTaskRecord {
        &self.task
    }
}

/// The task row `complete_task`/`fail_task` return (the columns the worker
/// looks at).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskRow {
    /// The run.
    pub run_id: Uuid,
    /// The step.
    pub step_slug: String,
    /// Position within the step.
    pub task_index: i32,
    /// Where the task is in its lifecycle.
    pub status: TaskStatus,
    /// Attempts so far.
    pub attempts_count: i32,
    /// The last failure message.
    pub error_message: Option<String>,
}

/// A message read from a flow's pgmq queue.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueueMessage {
    /// The message id (matches `step_tasks.message_id`).
    pub msg_id: i64,
    /// How many times it was read.
    pub read_ct: i32,
    /// `{"flow_slug","run_id","step_slug","task_index"}`.
    pub message: Value,
}

/// One element of a [`complete_tasks`] batch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Completion<'a> {
    /// The run.
    pub run_id: Uuid,
    /// The step.
    pub step_slug: &'a str,
    /// Position within the step.
    pub task_index: i32,
    /// The handler output.
    pub output: &'a Value,
}

/// `pgflow.start_tasks`: claims the queued tasks behind `msg_ids` for
/// `worker_id` and returns them with their inputs. Fewer rows than messages
/// is normal. The worker row must exist (see [`register_worker`]).
///
/// [`register_worker`]: super::register_worker
pub async fn start_tasks<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    msg_ids: &[i64],
    worker_id: Uuid,
) -> Result<Vec<StepTaskRecord>, ApiError> {
    call!(
        rows "start_tasks.sql",
        "pgflow.start_tasks",
        fetch_all(ex),
        flow_slug,
        msg_ids,
        worker_id,
    )
}

/// `pgflow.start_worker_tasks` (pgflow-rs extension): [`start_tasks`] that
/// returns each task's attempt number and step settings ([`ClaimedTask`]),
/// for workers that read with [`read_with_poll`].
pub async fn start_worker_tasks<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    msg_ids: &[i64],
    worker_id: Uuid,
) -> Result<Vec<ClaimedTask>, ApiError> {
    call!(
        rows "start_worker_tasks.sql",
        "pgflow.start_worker_tasks",
        fetch_all(ex),
        flow_slug,
        msg_ids,
        worker_id,
    )
}

/// `pgflow.claim_tasks` (pgflow-rs extension): reads up to `qty` visible
/// messages of the flow's queue without waiting (hiding them for `vt`
/// seconds) and starts their tasks for `worker_id`, stamped with `claim_id`.
/// One round-trip and one commit per batch; an empty result means nothing
/// claimable was visible. The worker row must exist (see [`register_worker`]).
///
/// Idempotent per `claim_id`: use a new id (`Uuid::new_v4()`) for every
/// claim, and retry a call that failed with a transient error (see
/// [`ApiError::is_transient`]) with the same id. If the lost call had
/// committed, the retry reads nothing and returns the tasks it started, so a
/// lost reply strands nothing. Each task comes with its attempt number and
/// its step's settings ([`ClaimedTask`]).
///
/// [`register_worker`]: super::register_worker
pub async fn claim_tasks<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    worker_id: Uuid,
    claim_id: Uuid,
    qty: i32,
    vt: i32,
) -> Result<Vec<ClaimedTask>, ApiError> {
    call!(
        rows "claim_tasks.sql",
        "pgflow.claim_tasks",
        fetch_all(ex),
        flow_slug,
        worker_id,
        claim_id,
        qty,
        vt,
    )
}

/// `pgflow.complete_tasks` (pgflow-rs extension): [`complete_task`] for a
/// whole batch in one round-trip and one transaction, in a lock order that
/// cannot deadlock against other batches. All or nothing: when one element
/// raises (e.g. an output over `pgflow.max_payload_bytes`), nothing is
/// recorded and the caller can fall back to one [`complete_task`] per
/// element. Idempotent like `complete_task`. Returns the known task rows.
pub async fn complete_tasks<'e>(
    ex: impl PgExecutor<'e>,
    completions: &[Completion<'_>],
) -> Result<Vec<TaskRow>, ApiError> {
    call!(
        rows "complete_tasks.sql",
        "pgflow.complete_tasks",
        fetch_all(ex),
        sqlx::types::Json(completions),
    )
}

/// `pgflow.complete_task`: reports a task's output. Idempotent (the first
/// report wins), so a caller may retry it after a connection error. Returns
/// the task row, `None` for an unknown task.
pub async fn complete_task<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    step_slug: &str,
    task_index: i32,
    output: &Value,
) -> Result<Option<TaskRow>, ApiError> {
    call!(
        rows "complete_task.sql",
        "pgflow.complete_task",
        fetch_optional(ex),
        run_id,
        step_slug,
        task_index,
        output,
    )
}

/// `pgflow.fail_task`: reports a failed attempt; the SQL schedules a retry or
/// exhausts the task. Returns the task row, `None` for an unknown task.
pub async fn fail_task<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    step_slug: &str,
    task_index: i32,
    error_message: &str,
) -> Result<Option<TaskRow>, ApiError> {
    call!(
        rows "fail_task.sql",
        "pgflow.fail_task",
        fetch_optional(ex),
        run_id,
        step_slug,
        task_index,
        error_message,
    )
}

/// `pgflow.read_with_poll` (pgmq.read_with_poll for a flow's queue, callable
/// by the worker role): reads up to `qty` messages from `queue_name`,
/// hiding them for `vt` seconds, waiting up to `max_poll_seconds` for the
/// first one.
pub async fn read_with_poll<'e>(
    ex: impl PgExecutor<'e>,
    queue_name: &str,
    vt: i32,
    qty: i32,
    max_poll_seconds: i32,
    poll_interval_ms: i32,
) -> Result<Vec<QueueMessage>, ApiError> {
    call!(
        rows "read_with_poll.sql",
        "pgflow.read_with_poll",
        fetch_all(ex),
        queue_name,
        vt,
        qty,
        max_poll_seconds,
        poll_interval_ms,
    )
}
