//! Flows loaded from the database with the built-in handler specs stored
//! beside them (what `pgflow worker` serves).

use pgflow_core::{Flow, FlowDef, FlowError, FlowShape};
use pgflow_db::api::{self, ApiError};
use pgflow_handlers::{Resources, StepSpecError};
use serde_json::Value;
use sqlx::PgPool;

use crate::builtin::BuiltinHandler;
use crate::flow::WorkerFlow;

/// Why a flow could not be loaded from the database.
#[derive(Debug, thiserror::Error)]
pub enum LoadFlowError {
    /// No flow of that slug.
    #[error("unknown flow {0:?}")]
    UnknownFlow(String),
    /// The stored shape does not make a valid flow (should not happen).
    #[error("flow {flow:?}: stored definition is invalid: {error}")]
    Invalid {
        /// The flow slug.
        flow: String,
        /// What is wrong.
        error: String,
    },
    /// Steps without a stored handler (a worker serving only built-in
    /// handlers cannot run them).
    #[error("flow {flow:?}: step(s) without a built-in handler: {} (give them a `handler` in the flow file, or serve this flow from a Rust worker)", steps.join(", "))]
    MissingHandlers {
        /// The flow slug.
        flow: String,
        /// The steps.
        steps: Vec<String>,
    },
    /// A stored spec is invalid or cannot run in this worker.
    #[error(transparent)]
    Spec(#[from] StepSpecError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] ApiError),
}

impl WorkerFlow {
    /// Loads a flow and its stored handler specs from the database
    /// (`pgflow flow add` or `pgflow.set_step_handler`), every step served by
    /// its built-in handler. Every step needs one.
    pub async fn from_database(
        pool: &PgPool,
        flow_slug: &str,
        resources: &Resources,
    ) -> Result<WorkerFlow, LoadFlowError> {
        let shape = api::get_flow_shape(pool, flow_slug)
            .await?
            .ok_or_else(|| LoadFlowError::UnknownFlow(flow_slug.to_string()))?;
        let invalid = |error: String| LoadFlowError::Invalid {
            flow: flow_slug.to_string(),
            error,
        };
        let shape: FlowShape = serde_json::from_value(shape)
            .map_err(|e| invalid(format!("unreadable stored shape: {e}")))?;
        let def: FlowDef = shape.into_def(flow_slug);
        let flow: Flow = def
            .validate()
            .map_err(|e: FlowError| invalid(e.to_string()))?;
        let specs: std::collections::HashMap<String, Value> = api::step_handlers(pool, flow_slug)
            .await?
            .into_iter()
            .collect();
        let missing: Vec<String> = flow
            .steps()
            .iter()
            .filter(|s| !specs.contains_key(&s.slug))
            .map(|s| s.slug.clone())
            .collect();
        if !missing.is_empty() {
            return Err(LoadFlowError::MissingHandlers {
                flow: flow_slug.to_string(),
                steps: missing,
            });
        }
        let mut handlers = std::collections::HashMap::new();
        for step in flow.steps() {
            let handler = BuiltinHandler::prepare(&specs[&step.slug], resources)
                .map_err(|e| e.in_step(flow_slug, step.slug.as_str()))?;
            handlers.insert(step.slug.clone(), handler.erase());
        }
        Ok(WorkerFlow { flow, handlers })
    }
}
