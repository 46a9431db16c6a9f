//! Flow definitions: compile a flow's shape into the database.

use serde::Deserialize;
use serde_json::Value;
use sqlx::PgExecutor;

use super::error::{from_json, ApiError, OrApi};

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

/// `pgflow.ensure_flow_compiled`: creates the flow from `shape` if missing,
/// verifies it, or (with `allow_data_loss`) recompiles it.
pub async fn ensure_flow_compiled<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    shape: &Value,
    allow_data_loss: bool,
) -> Result<CompileOutcome, ApiError> {
    const F: &str = "pgflow.ensure_flow_compiled";
    let value: Value = call!(
        scalar "ensure_flow_compiled.sql",
        F,
        fetch_one(ex),
        flow_slug,
        shape,
        allow_data_loss,
    )?;
    from_json(F, value)
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
}
