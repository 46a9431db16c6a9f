//! Built-in (no-code) step handlers in a worker: a validated
//! [`pgflow_handlers`] spec wrapped as a step handler, and flows loaded from
//! the database with the handler specs stored beside them.

use std::sync::Arc;
use std::time::Duration;

use pgflow_core::{Flow, FlowDef, FlowError, FlowShape};
use pgflow_db::api::{self, ApiError};
use pgflow_handlers::{PreparedHandler, Registry, Resources, SpecError, StepSpecError, TaskEnv};
use serde_json::Value;
use sqlx::PgPool;

use crate::flow::WorkerFlow;
use crate::handler::{ErasedHandler, HandlerFailure, TaskContext};

/// A validated built-in handler spec with what it needs to run (the HTTP
/// client, the environment, whether `exec` is allowed).
///
/// ```
/// use pgflow_handlers::Resources;
/// use pgflow_worker::{BuiltinHandler, StepDef, WorkerFlow};
/// use serde_json::json;
///
/// let resources = Resources::new().unwrap();
/// let shout = BuiltinHandler::prepare(
///     &json!({"kind": "transform", "filter": ".hello.greeting | ascii_upcase"}),
///     &resources,
/// )
/// .unwrap();
/// let flow = WorkerFlow::builder("greet")
///     .step(StepDef::single("hello"), |name: String, _ctx| async move {
///         Ok::<_, std::convert::Infallible>(serde_json::json!({"greeting": format!("hello {name}")}))
///     })
///     .builtin_step(StepDef::single("shout").depends_on(["hello"]), shout)
///     .build()
///     .unwrap();
/// assert_eq!(flow.flow().steps().len(), 2);
/// ```
#[derive(Clone)]
pub struct BuiltinHandler {
    handler: Arc<dyn PreparedHandler>,
    resources: Resources,
}

impl std::fmt::Debug for BuiltinHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinHandler")
            .field("handler", &self.handler)
            .finish_non_exhaustive()
    }
}

impl BuiltinHandler {
    /// Validates `spec` with the built-in kinds and checks what depends on
    /// this worker (`exec` allowed, API-key variable set).
    pub fn prepare(spec: &Value, resources: &Resources) -> Result<Self, SpecError> {
        Self::prepare_with(&Registry::builtin(), spec, resources)
    }

    /// [`prepare`](Self::prepare) with a registry of your own kinds.
    pub fn prepare_with(
        registry: &Registry,
        spec: &Value,
        resources: &Resources,
    ) -> Result<Self, SpecError> {
        let handler: Arc<dyn PreparedHandler> = Arc::from(registry.prepare(spec)?);
        handler.preflight(resources)?;
        Ok(Self {
            handler,
            resources: resources.clone(),
        })
    }

    /// The kind's name (`http`, `llm`, ...).
    pub fn kind(&self) -> &'static str {
        self.handler.kind()
    }

    /// The handler as every step handler is stored: it reads the attempt
    /// number, runs with the step's deadline, records LLM usage against the
    /// attempt, and keeps retryability and `Retry-After` for the report.
    pub(crate) fn erase(self, timeout: Duration) -> ErasedHandler {
        let this = Arc::new(self);
        Arc::new(move |input: Value, ctx: TaskContext| {
            let this = this.clone();
            Box::pin(async move {
                let deadline = tokio::time::Instant::now() + timeout;
                // Templates may use the attempt; a database hiccup here must
                // not fail the task, so 0 stands for "unknown".
                let attempt = ctx.attempt().await.unwrap_or(0);
                let env = TaskEnv {
                    flow: ctx.flow_slug().to_string(),
                    run_id: ctx.run_id(),
                    step: ctx.step_slug().to_string(),
                    task_index: ctx.task_index(),
                    attempt,
                    deadline,
                    resources: this.resources.clone(),
                };
                let result = this.handler.run(input, &env).await;
                let usage = match &result {
                    Ok(out) => out.usage.as_ref(),
                    Err(e) => e.usage(),
                };
                if let Some(usage) = usage {
                    if let Err(e) = ctx.report_usage(usage).await {
                        tracing::warn!(error = %e, "recording usage failed");
                    }
                }
                match result {
                    Ok(out) => Ok(out.output),
                    Err(e) => Err(HandlerFailure::Builtin {
                        message: e.message().to_string(),
                        retryable: e.is_retryable(),
                        retry_after: e.retry_after(),
                    }),
                }
            })
        })
    }
}

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
            handlers.insert(
                step.slug.clone(),
                handler.erase(step_timeout(&flow, &step.slug)),
            );
        }
        Ok(WorkerFlow { flow, handlers })
    }
}

/// The step's timeout as the executor enforces it.
pub(crate) fn step_timeout(flow: &Flow, step_slug: &str) -> Duration {
    Duration::from_secs(flow.step_timeout(step_slug).max(1) as u64)
}
