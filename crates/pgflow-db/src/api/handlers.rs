//! Built-in handler specs stored with a flow, and usage accounting
//! (pgflow-rs extensions).

use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{ApiError, OrApi};

/// `pgflow.set_step_handler`: stores or replaces a step's handler spec, or
/// removes it when `spec` is `None`. The SQL function checks the step exists
/// and the spec is an object with a string `kind`; the kind's own fields are
/// for the caller to validate first (see `pgflow_handlers::Registry`).
pub async fn set_step_handler<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    step_slug: &str,
    spec: Option<&Value>,
) -> Result<(), ApiError> {
    let _: Option<Value> = call!(
        scalar "set_step_handler.sql",
        "pgflow.set_step_handler",
        fetch_one(ex),
        flow_slug,
        step_slug,
        spec,
    )?;
    Ok(())
}

/// The stored handler specs of a flow, `(step_slug, spec)` in step order.
pub async fn step_handlers<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
) -> Result<Vec<(String, Value)>, ApiError> {
    call!(rows "step_handlers.sql", "pgflow.step_handlers", fetch_all(ex), flow_slug)
}

/// A flow with at least one stored handler.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FlowWithHandlers {
    /// The flow slug.
    pub flow_slug: String,
    /// Its steps that have no stored handler, in step order.
    pub steps_without_handler: Vec<String>,
}

/// Every flow that has at least one stored handler, by slug.
pub async fn flows_with_handlers<'e>(
    ex: impl PgExecutor<'e>,
) -> Result<Vec<FlowWithHandlers>, ApiError> {
    call!(rows "flows_with_handlers.sql", "pgflow.step_handlers", fetch_all(ex))
}

/// A stored flow's shape (`pgflow._get_flow_shape`), `None` when unknown.
pub async fn get_flow_shape<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
) -> Result<Option<Value>, ApiError> {
    call!(scalar "get_flow_shape.sql", "pgflow._get_flow_shape", fetch_one(ex), flow_slug)
}

/// One metered call, as [`record_task_usage`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord<'a> {
    /// The model that answered.
    pub model: &'a str,
    /// Prompt tokens, when known.
    pub input_tokens: Option<i64>,
    /// Completion tokens, when known.
    pub output_tokens: Option<i64>,
    /// Request to full reply, in milliseconds.
    pub latency_ms: i64,
}

/// `pgflow.record_task_usage`: records a call against the task's current
/// attempt. Returns `false` when nothing was recorded (the task is no longer
/// started by `worker_id`, e.g. it was requeued after this worker was
/// presumed dead).
pub async fn record_task_usage<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    step_slug: &str,
    task_index: i32,
    worker_id: Uuid,
    usage: &UsageRecord<'_>,
) -> Result<bool, ApiError> {
    let id: Option<i64> = call!(
        scalar "record_task_usage.sql",
        "pgflow.record_task_usage",
        fetch_one(ex),
        run_id,
        step_slug,
        task_index,
        worker_id,
        usage.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.latency_ms,
    )?;
    Ok(id.is_some())
}

/// `pgflow.task_attempt`: the task's attempt number (from 1), `None` when
/// the task is unknown.
pub async fn task_attempt<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    step_slug: &str,
    task_index: i32,
) -> Result<Option<i32>, ApiError> {
    call!(
        scalar "task_attempt.sql",
        "pgflow.task_attempt",
        fetch_one(ex),
        run_id,
        step_slug,
        task_index,
    )
}

/// Metered usage of one step of a run (`pgflow.step_usage`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StepUsage {
    /// The step slug.
    pub step_slug: String,
    /// Calls recorded (every attempt).
    pub calls: i64,
    /// Calls of attempts that did not complete the task.
    pub abandoned_calls: i64,
    /// Prompt tokens, summed.
    pub input_tokens: i64,
    /// Completion tokens, summed.
    pub output_tokens: i64,
    /// US dollars, when the models are priced in `pgflow.model_prices`.
    pub cost_usd: Option<f64>,
    /// Summed call latency in milliseconds.
    pub latency_ms: i64,
    /// The models that answered.
    pub models: Vec<String>,
}

/// The metered usage of a run, per step in step order (steps without
/// recorded calls are absent).
pub async fn step_usage<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Vec<StepUsage>, ApiError> {
    call!(rows "inspect_step_usage.sql", "pgflow.step_usage", fetch_all(ex), run_id)
}

/// Longest delay [`postpone_task_retry`] accepts, in seconds (one day).
pub const MAX_POSTPONE_SECS: i32 = 86_400;

/// `pgflow.postpone_task_retry`: keeps a queued (failed and requeued)
/// task's message hidden for `secs` seconds from now, as a server's
/// `Retry-After` asked. Runs as the schema owner, so the least-privileged
/// worker role can call it without pgmq privileges. `secs` is clamped to
/// `0..=MAX_POSTPONE_SECS`. Returns `false` when nothing was postponed (the
/// task is no longer queued, or its message is already hidden that long).
pub async fn postpone_task_retry<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
    step_slug: &str,
    task_index: i32,
    secs: i32,
) -> Result<bool, ApiError> {
    let postponed: Option<bool> = call!(
        scalar "postpone_task_retry.sql",
        "pgflow.postpone_task_retry",
        fetch_one(ex),
        run_id,
        step_slug,
        task_index,
        secs.clamp(0, MAX_POSTPONE_SECS),
    )?;
    Ok(postponed.unwrap_or(false))
}
