//! One typed Rust function per SQL function of the `pgflow` schema (plus the
//! few pgmq and table queries the worker and client need).
//!
//! This is the only place the runtime sends SQL from. Each query lives in
//! `crates/pgflow-db/queries/<name>.sql` and is embedded with `include_str!`,
//! so the SQL stays reviewable as SQL. Every function takes any
//! [`sqlx::PgExecutor`] (a pool, a connection or a transaction), so callers
//! choose the transaction boundaries.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), pgflow_db::api::ApiError> {
//! use pgflow_db::api;
//! let run = api::start_flow(&pool, "greet", &serde_json::json!({"name": "Ada"}), None).await?;
//! println!("started run {}", run.run_id);
//! # Ok(()) }
//! ```

use serde::Deserialize;
use serde_json::Value;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The database or the connection failed; see [`ApiError::is_transient`].
    #[error("{function}: {source}")]
    Db {
        /// The SQL function or query that failed, e.g. `pgflow.start_tasks`.
        function: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database answered with something this crate does not understand.
    #[error("{function}: unexpected result: {message}")]
    Decode {
        /// The SQL function or query.
        function: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl ApiError {
    /// The SQLSTATE of a database error, if the server raised one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            ApiError::Db {
                source: sqlx::Error::Database(e),
                ..
            } => e.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    /// The server's error message, if the server raised one.
    pub fn db_message(&self) -> Option<&str> {
        match self {
            ApiError::Db {
                source: sqlx::Error::Database(e),
                ..
            } => Some(e.message()),
            _ => None,
        }
    }

    /// True for failures worth retrying as-is: lost or refused connections,
    /// pool timeouts, server shutdown, serialization failures and deadlocks.
    /// False for errors the same call would hit again (bad input, a raised
    /// exception, a constraint).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Db { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(e) => e.code().is_some_and(|c| {
                    // 08: connection exception; 57P: operator intervention
                    // (admin/crash shutdown, cannot connect now); 40001/40P01:
                    // serialization failure / deadlock; 53: insufficient resources.
                    c.starts_with("08")
                        || c.starts_with("57P")
                        || c == "40001"
                        || c == "40P01"
                        || c.starts_with("53")
                }),
                _ => false,
            },
            ApiError::Decode { .. } => false,
        }
    }
}

fn db(function: &'static str) -> impl FnOnce(sqlx::Error) -> ApiError {
    move |source| ApiError::Db { function, source }
}

/// A row of `pgflow.runs` (the columns clients need).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// The run id.
    pub run_id: Uuid,
    /// The flow it runs.
    pub flow_slug: String,
    /// `started`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// The run input.
    pub input: Value,
    /// Leaf outputs once completed (NULL when no leaf completed).
    pub output: Option<Value>,
    /// Steps not yet completed or skipped.
    pub remaining_steps: i32,
}

impl RunRow {
    fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(RunRow {
            run_id: row.try_get("run_id")?,
            flow_slug: row.try_get("flow_slug")?,
            status: row.try_get("status")?,
            input: row.try_get("input")?,
            output: row.try_get("output")?,
            remaining_steps: row.try_get("remaining_steps")?,
        })
    }

    /// True for `completed`, `failed` and `cancelled`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled")
    }
}

/// `pgflow.step_task_record`: a task claimed by `start_tasks`, with its input.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTaskRecord {
    /// The flow.
    pub flow_slug: String,
    /// The run.
    pub run_id: Uuid,
    /// The step.
    pub step_slug: String,
    /// `{}` for a root single step, the deps object for a dependent single
    /// step, the array element for a map step.
    pub input: Value,
    /// The pgmq message backing this task.
    pub msg_id: i64,
    /// Position within a map step (0 for single steps).
    pub task_index: i32,
    /// The run input, for root single steps only.
    pub flow_input: Option<Value>,
}

impl StepTaskRecord {
    fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(StepTaskRecord {
            flow_slug: row.try_get("flow_slug")?,
            run_id: row.try_get("run_id")?,
            step_slug: row.try_get("step_slug")?,
            input: row
                .try_get::<Option<Value>, _>("input")?
                .unwrap_or(Value::Null),
            msg_id: row.try_get("msg_id")?,
            task_index: row.try_get("task_index")?,
            flow_input: row.try_get("flow_input")?,
        })
    }
}

/// The task row `complete_task`/`fail_task` return (the columns the worker
/// looks at).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The run.
    pub run_id: Uuid,
    /// The step.
    pub step_slug: String,
    /// Position within the step.
    pub task_index: i32,
    /// `queued`, `started`, `completed` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts_count: i32,
    /// The last failure message.
    pub error_message: Option<String>,
}

impl TaskRow {
    fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(TaskRow {
            run_id: row.try_get("run_id")?,
            step_slug: row.try_get("step_slug")?,
            task_index: row.try_get("task_index")?,
            status: row.try_get("status")?,
            attempts_count: row.try_get("attempts_count")?,
            error_message: row.try_get("error_message")?,
        })
    }
}

/// A message read from a flow's pgmq queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    /// The message id (matches `step_tasks.message_id`).
    pub msg_id: i64,
    /// How many times it was read.
    pub read_ct: i32,
    /// `{"flow_slug","run_id","step_slug","task_index"}`.
    pub message: Value,
}

/// `ensure_flow_compiled`'s `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompileStatus {
    /// The flow did not exist and was created.
    Compiled,
    /// The stored shape matches.
    Verified,
    /// The shape differed and the flow was dropped with its runs and recreated.
    Recompiled,
    /// The shape differs; nothing changed. Use a new flow slug.
    Mismatch,
}

/// The result of `ensure_flow_compiled`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CompileOutcome {
    /// What happened.
    pub status: CompileStatus,
    /// Human-readable differences (SPEC §3.7 templates); empty when equal.
    #[serde(default)]
    pub differences: Vec<String>,
}

/// `get_run_with_states`: the run and all of its step states.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunWithStates {
    /// The run row.
    pub run: RunState,
    /// One entry per step; order undefined.
    pub steps: Vec<StepState>,
}

/// The run part of [`RunWithStates`] (a `pgflow.runs` row as JSON).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunState {
    /// The run id.
    pub run_id: Uuid,
    /// The flow.
    pub flow_slug: String,
    /// Run status.
    pub status: String,
    /// The run input.
    pub input: Value,
    /// The run output, once completed.
    #[serde(default)]
    pub output: Option<Value>,
    /// Steps not yet completed or skipped.
    pub remaining_steps: i32,
    /// Timestamps as Postgres prints them in JSON.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Set once completed.
    #[serde(default)]
    pub completed_at: Option<String>,
    /// Set once failed.
    #[serde(default)]
    pub failed_at: Option<String>,
}

/// One `pgflow.step_states` row of [`RunWithStates`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StepState {
    /// The step.
    pub step_slug: String,
    /// `created`, `started`, `completed`, `failed` or `skipped`.
    pub status: String,
    /// Tasks not yet completed (NULL until started).
    #[serde(default)]
    pub remaining_tasks: Option<i32>,
    /// Planned task count.
    #[serde(default)]
    pub initial_tasks: Option<i32>,
    /// Parents not yet completed.
    pub remaining_deps: i32,
    /// The step output, once completed.
    #[serde(default)]
    pub output: Option<Value>,
    /// Why it failed.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Why it was skipped.
    #[serde(default)]
    pub skip_reason: Option<String>,
}

/// `pgflow.start_flow`: starts a run and returns its row. With `run_id`
/// `None` the database picks one.
pub async fn start_flow<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    input: &Value,
    run_id: Option<Uuid>,
) -> Result<RunRow, ApiError> {
    const F: &str = "pgflow.start_flow";
    let row = sqlx::query(include_str!("../queries/start_flow.sql"))
        .bind(flow_slug)
        .bind(input)
        .bind(run_id)
        .fetch_one(ex)
        .await
        .map_err(db(F))?;
    RunRow::from_row(&row).map_err(db(F))
}

/// `pgflow.start_tasks`: claims the queued tasks behind `msg_ids` for
/// `worker_id` and returns them with their inputs. Fewer rows than messages
/// is normal. The worker row must exist (see [`register_worker`]).
pub async fn start_tasks<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    msg_ids: &[i64],
    worker_id: Uuid,
) -> Result<Vec<StepTaskRecord>, ApiError> {
    const F: &str = "pgflow.start_tasks";
    let rows = sqlx::query(include_str!("../queries/start_tasks.sql"))
        .bind(flow_slug)
        .bind(msg_ids)
        .bind(worker_id)
        .fetch_all(ex)
        .await
        .map_err(db(F))?;
    rows.iter()
        .map(StepTaskRecord::from_row)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db(F))
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
    const F: &str = "pgflow.complete_tasks";
    let rows = sqlx::query(include_str!("../queries/complete_tasks.sql"))
        .bind(sqlx::types::Json(completions))
        .fetch_all(ex)
        .await
        .map_err(db(F))?;
    rows.iter()
        .map(TaskRow::from_row)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db(F))
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
/// lost reply strands nothing.
pub async fn claim_tasks<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    worker_id: Uuid,
    claim_id: Uuid,
    qty: i32,
    vt: i32,
) -> Result<Vec<StepTaskRecord>, ApiError> {
    const F: &str = "pgflow.claim_tasks";
    let rows = sqlx::query(include_str!("../queries/claim_tasks.sql"))
        .bind(flow_slug)
        .bind(worker_id)
        .bind(claim_id)
        .bind(qty)
        .bind(vt)
        .fetch_all(ex)
        .await
        .map_err(db(F))?;
    rows.iter()
        .map(StepTaskRecord::from_row)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db(F))
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
    const F: &str = "pgflow.complete_task";
    let row = sqlx::query(include_str!("../queries/complete_task.sql"))
        .bind(run_id)
        .bind(step_slug)
        .bind(task_index)
        .bind(output)
        .fetch_optional(ex)
        .await
        .map_err(db(F))?;
    row.as_ref()
        .map(TaskRow::from_row)
        .transpose()
        .map_err(db(F))
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
    const F: &str = "pgflow.fail_task";
    let row = sqlx::query(include_str!("../queries/fail_task.sql"))
        .bind(run_id)
        .bind(step_slug)
        .bind(task_index)
        .bind(error_message)
        .fetch_optional(ex)
        .await
        .map_err(db(F))?;
    row.as_ref()
        .map(TaskRow::from_row)
        .transpose()
        .map_err(db(F))
}

/// `pgflow.ensure_flow_compiled`: creates the flow from `shape` if missing,
/// verifies it, or (with `allow_data_loss`) recompiles it.
pub async fn ensure_flow_compiled<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    shape: &Value,
    allow_data_loss: bool,
) -> Result<CompileOutcome, ApiError> {
    const F: &str = "pgflow.ensure_flow_compiled";
    let value: Value = sqlx::query_scalar(include_str!("../queries/ensure_flow_compiled.sql"))
        .bind(flow_slug)
        .bind(shape)
        .bind(allow_data_loss)
        .fetch_one(ex)
        .await
        .map_err(db(F))?;
    serde_json::from_value(value.clone()).map_err(|e| ApiError::Decode {
        function: F,
        message: format!("{e} in {value}"),
    })
}

/// `pgflow.get_run_with_states`: the run and its step states; `None` for an
/// unknown run.
pub async fn get_run_with_states<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Option<RunWithStates>, ApiError> {
    const F: &str = "pgflow.get_run_with_states";
    let value: Option<Value> =
        sqlx::query_scalar(include_str!("../queries/get_run_with_states.sql"))
            .bind(run_id)
            .fetch_one(ex)
            .await
            .map_err(db(F))?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| ApiError::Decode {
                function: F,
                message: e.to_string(),
            }),
    }
}

/// Reads one `pgflow.runs` row; `None` for an unknown run.
pub async fn get_run<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Option<RunRow>, ApiError> {
    const F: &str = "pgflow.runs";
    let row = sqlx::query(include_str!("../queries/get_run.sql"))
        .bind(run_id)
        .fetch_optional(ex)
        .await
        .map_err(db(F))?;
    row.as_ref()
        .map(RunRow::from_row)
        .transpose()
        .map_err(db(F))
}

/// The failed steps of a run as `(step_slug, error_message)`, by slug.
pub async fn failed_steps<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    const F: &str = "pgflow.step_states";
    sqlx::query_as(include_str!("../queries/failed_steps.sql"))
        .bind(run_id)
        .fetch_all(ex)
        .await
        .map_err(db(F))
}

/// The input of a run; `None` for an unknown run.
pub async fn run_input<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Option<Value>, ApiError> {
    sqlx::query_scalar(include_str!("../queries/run_input.sql"))
        .bind(run_id)
        .fetch_optional(ex)
        .await
        .map_err(db("pgflow.runs"))
}

/// `pgflow.mark_worker_stopped`: sets the worker's `stopped_at`.
pub async fn mark_worker_stopped<'e>(
    ex: impl PgExecutor<'e>,
    worker_id: Uuid,
) -> Result<(), ApiError> {
    sqlx::query(include_str!("../queries/mark_worker_stopped.sql"))
        .bind(worker_id)
        .execute(ex)
        .await
        .map_err(db("pgflow.mark_worker_stopped"))?;
    Ok(())
}

/// `pgflow.requeue_stalled_tasks`: requeues tasks whose worker died; returns
/// how many. Safe to call from many sessions (SKIP LOCKED), but see
/// [`sweep_requeue_stalled`] for the fleet-wide single-runner variant.
pub async fn requeue_stalled_tasks<'e>(ex: impl PgExecutor<'e>) -> Result<i32, ApiError> {
    sqlx::query_scalar(include_str!("../queries/requeue_stalled_tasks.sql"))
        .fetch_one(ex)
        .await
        .map_err(db("pgflow.requeue_stalled_tasks"))
}

/// Runs `requeue_stalled_tasks` only if this session wins the transaction
/// advisory lock `lock_key`: `Some(n)` when it ran, `None` when another
/// session holds the lock. This is how a fleet of workers without pg_cron
/// elects one sweeper per round.
pub async fn sweep_requeue_stalled<'e>(
    ex: impl PgExecutor<'e>,
    lock_key: i64,
) -> Result<Option<i32>, ApiError> {
    sqlx::query_scalar(include_str!("../queries/sweep_requeue_stalled.sql"))
        .bind(lock_key)
        .fetch_one(ex)
        .await
        .map_err(db("pgflow.requeue_stalled_tasks"))
}

/// `pgflow.cancel_run`: cancels a started run (pgflow-rs extension). Returns
/// `true` when this call cancelled it, `false` when the run was not started.
pub async fn cancel_run<'e>(ex: impl PgExecutor<'e>, run_id: Uuid) -> Result<bool, ApiError> {
    sqlx::query_scalar(include_str!("../queries/cancel_run.sql"))
        .bind(run_id)
        .fetch_one(ex)
        .await
        .map_err(db("pgflow.cancel_run"))
}

/// `pgflow.retry_run`: resumes a failed run where it failed (pgflow-rs
/// extension). Returns `true` when the run was resumed.
pub async fn retry_run<'e>(ex: impl PgExecutor<'e>, run_id: Uuid) -> Result<bool, ApiError> {
    sqlx::query_scalar(include_str!("../queries/retry_run.sql"))
        .bind(run_id)
        .fetch_one(ex)
        .await
        .map_err(db("pgflow.retry_run"))
}

/// Inserts the worker row (must happen before `start_tasks` names the worker).
pub async fn register_worker<'e>(
    ex: impl PgExecutor<'e>,
    queue_name: &str,
    worker_id: Uuid,
    function_name: &str,
) -> Result<(), ApiError> {
    sqlx::query(include_str!("../queries/register_worker.sql"))
        .bind(queue_name)
        .bind(worker_id)
        .bind(function_name)
        .execute(ex)
        .await
        .map_err(db("pgflow.workers"))?;
    Ok(())
}

/// Heartbeat: bumps `last_heartbeat_at`. Returns `true` when an operator has
/// deprecated this worker (it should stop polling), and also when the row is
/// gone (e.g. pruned), since such a worker cannot claim tasks anyway.
pub async fn heartbeat<'e>(ex: impl PgExecutor<'e>, worker_id: Uuid) -> Result<bool, ApiError> {
    let deprecated: Option<bool> = sqlx::query_scalar(include_str!("../queries/heartbeat.sql"))
        .bind(worker_id)
        .fetch_optional(ex)
        .await
        .map_err(db("pgflow.workers"))?;
    Ok(deprecated.unwrap_or(true))
}

/// `pgmq.read_with_poll`: reads up to `qty` messages from `queue_name`,
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
    const F: &str = "pgmq.read_with_poll";
    let rows = sqlx::query(include_str!("../queries/read_with_poll.sql"))
        .bind(queue_name)
        .bind(vt)
        .bind(qty)
        .bind(max_poll_seconds)
        .bind(poll_interval_ms)
        .fetch_all(ex)
        .await
        .map_err(db(F))?;
    rows.iter()
        .map(|row| {
            Ok(QueueMessage {
                msg_id: row.try_get("msg_id")?,
                read_ct: row.try_get("read_ct")?,
                message: row.try_get("message")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db(F))
}

/// `pgflow.setup_roles`: creates (when missing) a NOLOGIN role for workers, allowed only to
/// claim and report tasks, and a read-only role for inspection, and grants them what they
/// need. Idempotent; needs CREATEROLE. Grant the roles to login roles afterwards:
///
/// ```sql
/// CREATE ROLE worker_app LOGIN PASSWORD '...' IN ROLE pgflow_worker;
/// ```
pub async fn setup_roles<'e>(
    ex: impl PgExecutor<'e>,
    worker_role: &str,
    reader_role: &str,
) -> Result<(), ApiError> {
    sqlx::query(include_str!("../queries/setup_roles.sql"))
        .bind(worker_role)
        .bind(reader_role)
        .execute(ex)
        .await
        .map_err(db("pgflow.setup_roles"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_outcome_parses() {
        let o: CompileOutcome =
            serde_json::from_value(serde_json::json!({"status": "mismatch", "differences": ["Step count differs: 1 vs 2"]}))
                .unwrap();
        assert_eq!(o.status, CompileStatus::Mismatch);
        assert_eq!(o.differences.len(), 1);
    }

    #[test]
    fn run_with_states_parses_row_json() {
        let v = serde_json::json!({
            "run": {"run_id": "7f1a0c4e-0000-4000-8000-000000000001", "flow_slug": "f", "status": "started",
                    "input": {}, "output": null, "remaining_steps": 1,
                    "started_at": "2024-01-01T00:00:00.1+00:00", "completed_at": null, "failed_at": null},
            "steps": [{"run_id": "7f1a0c4e-0000-4000-8000-000000000001", "flow_slug": "f", "step_slug": "a",
                       "status": "created", "remaining_tasks": null, "initial_tasks": 1, "remaining_deps": 0,
                       "output": null, "error_message": null, "skip_reason": null}]
        });
        let r: RunWithStates = serde_json::from_value(v).unwrap();
        assert_eq!(r.steps[0].step_slug, "a");
        assert_eq!(r.run.remaining_steps, 1);
    }
}
