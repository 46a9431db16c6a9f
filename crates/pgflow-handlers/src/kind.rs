//! The plug-in points: a [`HandlerKind`] turns a spec into a
//! [`PreparedHandler`], which runs tasks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::error::{HandlerError, SpecError};
use crate::output::HandlerOutput;
use crate::task_env::{Resources, TaskEnv};

/// A boxed, sendable future borrowing from the handler and the task.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One kind of built-in handler (`http`, `llm`, ...).
pub trait HandlerKind: Send + Sync {
    /// The name a spec's `kind` field uses.
    fn name(&self) -> &'static str;

    /// Checks a whole spec (including its `kind` field) and compiles what can
    /// be compiled up front (templates, jq filters, JSON schemas). Every
    /// mistake that does not depend on the worker is found here.
    fn prepare(&self, spec: &Value) -> Result<Box<dyn PreparedHandler>, SpecError>;
}

/// A validated spec, ready to run any number of tasks concurrently.
pub trait PreparedHandler: Send + Sync + fmt::Debug {
    /// The kind's name.
    fn kind(&self) -> &'static str;

    /// Checks what only the worker knows, before it serves the step: whether
    /// `exec` is allowed, whether the API-key variable is set. A worker calls
    /// this at start-up so a misconfiguration is reported once, naming the
    /// field, instead of failing every task. The same checks run again in
    /// [`run`](Self::run).
    fn preflight(&self, resources: &Resources) -> Result<(), SpecError> {
        let _ = resources;
        Ok(())
    }

    /// Runs one task on `input` (the step's input: the flow input for root
    /// steps, the dependencies' outputs by slug otherwise, one element for
    /// map steps).
    fn run<'a>(
        &'a self,
        input: Value,
        task: &'a TaskEnv,
    ) -> BoxFuture<'a, Result<HandlerOutput, HandlerError>>;
}
