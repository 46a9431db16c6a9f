//! Runs: start one, read it back, wait-side reads, cancel and retry.

use serde::Deserialize;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::error::{from_json, ApiError, OrApi};
use crate::status::{RunStatus, StepStatus};

/// A row of `pgflow.runs` (the columns clients need).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunRow {
    /// The run id.
    pub run_id: Uuid,
    /// The flow it runs.
    pub flow_slug: String,
    /// Where the run is in its lifecycle.
    pub status: RunStatus,
    /// The run input.
    pub input: Value,
    /// Leaf outputs once completed (NULL when no leaf completed).
    pub output: Option<Value>,
    /// Steps not yet completed or skipped.
    pub remaining_steps: i32,
}

impl RunRow {
    /// True for `completed`, `failed` and `cancelled`.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
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
    pub status: RunStatus,
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
    /// Where the step is in its lifecycle.
    pub status: StepStatus,
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
    call!(rows "start_flow.sql", "pgflow.start_flow", fetch_one(ex), flow_slug, input, run_id)
}

/// `pgflow.get_run_with_states`: the run and its step states; `None` for an
/// unknown run.
pub async fn get_run_with_states<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Option<RunWithStates>, ApiError> {
    const F: &str = "pgflow.get_run_with_states";
    let value: Option<Value> = call!(scalar "get_run_with_states.sql", F, fetch_one(ex), run_id)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => from_json(F, value).map(Some),
    }
}

/// Reads one `pgflow.runs` row; `None` for an unknown run.
pub async fn get_run<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Option<RunRow>, ApiError> {
    call!(rows "get_run.sql", "pgflow.runs", fetch_optional(ex), run_id)
}

/// The failed steps of a run as `(step_slug, error_message)`, by slug.
pub async fn failed_steps<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    call!(rows "failed_steps.sql", "pgflow.step_states", fetch_all(ex), run_id)
}

/// The input of a run; `None` for an unknown run.
pub async fn run_input<'e>(
    ex: impl PgExecutor<'e>,
    run_id: Uuid,
) -> Result<Option<Value>, ApiError> {
    call!(scalar "run_input.sql", "pgflow.runs", fetch_optional(ex), run_id)
}

/// `pgflow.cancel_run`: cancels a started run (pgflow-rs extension). Returns
/// `true` when this call cancelled it, `false` when the run was not started.
pub async fn cancel_run<'e>(ex: impl PgExecutor<'e>, run_id: Uuid) -> Result<bool, ApiError> {
    call!(scalar "cancel_run.sql", "pgflow.cancel_run", fetch_one(ex), run_id)
}

/// `pgflow.retry_run`: resumes a failed run where it failed (pgflow-rs
/// extension). Returns `true` when the run was resumed.
pub async fn retry_run<'e>(ex: impl PgExecutor<'e>, run_id: Uuid) -> Result<bool, ApiError> {
    call!(scalar "retry_run.sql", "pgflow.retry_run", fetch_one(ex), run_id)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(r.steps[0].status, StepStatus::Created);
        assert_eq!(r.run.status, RunStatus::Started);
        assert_eq!(r.run.remaining_steps, 1);
    }
}
