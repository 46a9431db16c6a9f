//! A flow definition together with one handler per step.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;

use pgflow_core::{Flow, FlowBuilder, FlowError, StepDef, StepType};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::builtin::BuiltinHandler;
use crate::handler::{erase, ErasedHandler, TaskContext};

/// A validated flow whose every step has a handler.
///
/// ```
/// use pgflow_worker::{StepDef, WorkerFlow};
///
/// let flow = WorkerFlow::builder("greet")
///     .step(StepDef::single("hello"), |name: String, _ctx| async move {
///         Ok::<_, std::convert::Infallible>(format!("hello {name}"))
///     })
///     .build()
///     .unwrap();
/// assert_eq!(flow.flow().slug(), "greet");
/// ```
pub struct WorkerFlow {
    pub(crate) flow: Flow,
    pub(crate) handlers: HashMap<String, ErasedHandler>,
}

impl std::fmt::Debug for WorkerFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerFlow")
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

impl WorkerFlow {
    /// Starts a flow with this slug.
    pub fn builder(slug: impl Into<String>) -> WorkerFlowBuilder {
        WorkerFlowBuilder {
            flow: FlowBuilder::new(slug),
            handlers: HashMap::new(),
            builtin: Vec::new(),
        }
    }

    /// The validated definition.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The distinct step start delays of this flow (SPEC §3.5), for waking
    /// up when a delayed step's first messages become visible.
    pub(crate) fn start_delays(&self) -> Vec<std::time::Duration> {
        let mut secs: Vec<u64> = self
            .flow
            .steps()
            .iter()
            .filter_map(|s| s.options.start_delay)
            .filter(|d| *d > 0)
            .map(|d| d as u64)
            .collect();
        secs.sort_unstable();
        secs.dedup();
        secs.into_iter()
            .map(std::time::Duration::from_secs)
            .collect()
    }

    /// True when the step's handler takes the run input (a root single step);
    /// otherwise it takes `start_tasks`' `input` (deps object or map element).
    pub(crate) fn takes_flow_input(&self, step_slug: &str) -> bool {
        self.flow
            .step(step_slug)
            .is_some_and(|s| s.step_type == StepType::Single && s.depends_on.is_empty())
    }
}

/// Builds a [`WorkerFlow`]: a flow definition plus handlers.
///
/// Handler input per step kind: a root single step gets the run input; a
/// dependent single step gets `{ "<parent>": <parent output>, ... }` (skipped
/// parents are absent); a map step gets one element of its array.
pub struct WorkerFlowBuilder {
    flow: FlowBuilder,
    handlers: HashMap<String, ErasedHandler>,
    builtin: Vec<(String, BuiltinHandler)>,
}

impl WorkerFlowBuilder {
    /// Default attempts per task (>= 1).
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.flow = self.flow.max_attempts(n);
        self
    }

    /// Default retry base delay in seconds (>= 1).
    pub fn base_delay(mut self, secs: i32) -> Self {
        self.flow = self.flow.base_delay(secs);
        self
    }

    /// Default task timeout in seconds (>= 3); the worker also cancels a
    /// handler that runs longer than its step's timeout. This is what the
    /// flow is compiled with; afterwards the database rules: the worker
    /// takes each task's timeout from `pgflow.steps`/`pgflow.flows` as it
    /// claims the task.
    pub fn timeout(mut self, secs: i32) -> Self {
        self.flow = self.flow.timeout(secs);
        self
    }

    /// Adds a step (single or map, per `def`) with its async handler. The
    /// handler gets a typed input and a [`TaskContext`], and returns a
    /// serializable output or an error whose `Display` text is stored as the
    /// task's `error_message`.
    pub fn step<I, O, E, F, Fut>(mut self, def: StepDef, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: Display + Send + 'static,
        F: Fn(I, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        self.builtin.retain(|(slug, _)| *slug != def.slug);
        self.handlers.insert(def.slug.clone(), erase(handler));
        self.flow = self.flow.step(def);
        self
    }

    /// Adds a step served by a built-in handler (see [`BuiltinHandler`]),
    /// next to steps with Rust handlers. Its input is the same as a Rust
    /// handler's; LLM usage is recorded in `pgflow.task_usage`.
    pub fn builtin_step(mut self, def: StepDef, handler: BuiltinHandler) -> Self {
        self.handlers.remove(&def.slug);
        self.builtin.push((def.slug.clone(), handler));
        self.flow = self.flow.step(def);
        self
    }

    /// Validates the definition.
    pub fn build(self) -> Result<WorkerFlow, FlowError> {
        let flow = self.flow.build()?;
        let mut handlers = self.handlers;
        for (slug, handler) in self.builtin {
            handlers.insert(slug, handler.erase());
        }
        Ok(WorkerFlow { flow, handlers })
    }
}
