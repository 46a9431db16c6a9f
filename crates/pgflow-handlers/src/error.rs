//! The two ways a handler can fail: its spec is wrong (found before any task
//! runs), or one run of it failed (found while running a task).

use std::time::Duration;

use crate::output::Usage;

/// A handler spec that cannot be used, naming the field at fault.
///
/// `field` is a path inside the spec, starting at `handler` (for example
/// `handler.url` or `handler.headers.Authorization`), so a caller can put
/// the flow and the step in front of it with [`SpecError::in_step`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    field: String,
    message: String,
}

impl SpecError {
    /// An error about `field` (a path such as `handler.url`).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The spec field at fault, e.g. `handler.url`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it (without the field name).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// This error as it reads for a step of a flow:
    /// `flow "news", step "fetch": handler.url: ...`.
    pub fn in_step(self, flow: impl Into<String>, step: impl Into<String>) -> StepSpecError {
        StepSpecError {
            flow: flow.into(),
            step: step.into(),
            error: self,
        }
    }
}

/// A [`SpecError`] placed in a flow and a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flow \"{flow}\", step \"{step}\": {error}")]
pub struct StepSpecError {
    /// The flow slug.
    pub flow: String,
    /// The step slug.
    pub step: String,
    /// What is wrong with the step's handler spec.
    pub error: SpecError,
}

/// One run of a handler failed.
///
/// The message is what the worker stores as the task's error message, so it
/// never contains secrets (API keys are scrubbed from anything a remote
/// service sends back). `retryable` tells whether another attempt could
/// succeed: a timeout, a refused connection or an HTTP 503 could; an HTTP 404,
/// a template referring to a missing variable or a refused `exec` could not.
/// `retry_after` carries a server's `Retry-After`. `usage` is set when the
/// attempt spent tokens before failing (an LLM reply that failed its schema).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
    usage: Option<Usage>,
}

impl HandlerError {
    /// A failure another attempt may not repeat.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after: None,
            usage: None,
        }
    }

    /// A failure every attempt would repeat (bad input, bad request, refused).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after: None,
            usage: None,
        }
    }

    /// Sets the delay a server asked for before the next attempt.
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay;
        self
    }

    /// Records what the failed attempt spent.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The task's error message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// What the failed attempt spent, if it spent anything measurable.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

impl HandlerError {
    /// Replaces every occurrence of `secret` in the message.
    pub(crate) fn scrub(mut self, secret: &str) -> Self {
        if !secret.is_empty() && self.message.contains(secret) {
            self.message = self.message.replace(secret, "[redacted]");
        }
        self
    }
}
