//! What a successful run produces.

use std::time::Duration;

use serde_json::Value;

/// The output of one successful handler run.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerOutput {
    /// The step's output (stored as the task's output).
    pub output: Value,
    /// What the run spent, for handlers that call a metered service.
    pub usage: Option<Usage>,
}

impl HandlerOutput {
    /// An output with no usage to report.
    pub fn new(output: Value) -> Self {
        Self {
            output,
            usage: None,
        }
    }
}

/// What one call to a metered model cost, as the service reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The model that answered (as the reply names it, else as requested).
    pub model: String,
    /// Prompt tokens, when the reply says.
    pub input_tokens: Option<u64>,
    /// Completion tokens, when the reply says.
    pub output_tokens: Option<u64>,
    /// From sending the request to having read the whole reply.
    pub latency: Duration,
}
