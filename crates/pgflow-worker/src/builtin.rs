//! Built-in (no-code) step handlers in a worker: a validated
//! [`pgflow_handlers`] spec wrapped as a step handler.

use std::sync::Arc;

use pgflow_handlers::{PreparedHandler, Registry, Resources, SpecError, TaskEnv};
use serde_json::Value;

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
    /// number, runs with the step's deadline (the timeout the database
    /// returned with the task), records LLM usage against the
    /// attempt, and keeps retryability and `Retry-After` for the report.
    pub(crate) fn erase(self) -> ErasedHandler {
        let this = Arc::new(self);
        Arc::new(move |input: Value, ctx: TaskContext| {
            let this = this.clone();
            Box::pin(async move {
                let deadline = tokio::time::Instant::now() + ctx.timeout();
                let attempt = ctx.attempt();
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
