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
    /// Human-readable differences, the shape given first and the stored one
    /// second (upstream's templates); empty when equal. See
    /// [`CompileOutcome::differences_between`] to name the two sides.
    #[serde(default)]
    pub differences: Vec<String>,
}

impl CompileOutcome {
    /// The differences with their two sides named, e.g. `"file"` and
    /// `"database"`: upstream's templates say `3 vs 2` and `first shape`,
    /// which leaves the reader guessing which side is which.
    pub fn differences_between(&self, given: &str, stored: &str) -> Vec<String> {
        self.differences
            .iter()
            .map(|d| name_sides(d, given, stored))
            .collect()
    }
}

/// Rewrites one difference sentence of `_compare_flow_shapes` (the shape
/// given first, the stored one second) to name both sides; a sentence in
/// another form is returned as it is.
pub fn name_sides(difference: &str, given: &str, stored: &str) -> String {
    if let Some(counts) = difference.strip_prefix("Step count differs: ") {
        if let Some((a, b)) = counts.split_once(" vs ") {
            return format!("Step count differs: {a} in the {given}, {b} in the {stored}");
        }
    }
    let Some((place, rest)) = difference.split_once(": ") else {
        return difference.to_string();
    };
    // "missing in first shape (second has 'x')" and the other way round.
    for (missing, missing_side, has_side) in [
        ("missing in first shape (second has ", given, stored),
        ("missing in second shape (first has ", stored, given),
    ] {
        if let Some(slug) = rest.strip_prefix(missing).and_then(|r| r.strip_suffix(')')) {
            return format!("{place}: missing in the {missing_side} (the {has_side} has {slug})");
        }
    }
    // "<field> differs <a> vs <b>" / "dependencies differ [a] vs [b]".
    for verb in [" differs ", " differ "] {
        if let Some((field, values)) = rest.split_once(verb) {
            if let Some((a, b)) = values.split_once(" vs ") {
                return format!(
                    "{place}: {field}{}: {given} {a}, {stored} {b}",
                    verb.trim_end()
                );
            }
        }
    }
    difference.to_string()
}

/// One option changed by [`apply_flow_options`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct OptionChange {
    /// The step whose option changed; `None` for a flow option.
    pub step: Option<String>,
    /// The option's shape name: `maxAttempts`, `baseDelay`, `timeout`, `startDelay`.
    pub option: String,
    /// The stored value before (`None`: a step option inheriting the flow's).
    pub old: Option<i32>,
    /// The stored value now.
    pub new: Option<i32>,
}

/// `pgflow.apply_flow_options`: sets a registered flow's options (and its
/// steps') to those of `shape`, whose structure must match the stored one;
/// returns what changed (empty when nothing did).
pub async fn apply_flow_options<'e>(
    ex: impl PgExecutor<'e>,
    flow_slug: &str,
    shape: &Value,
) -> Result<Vec<OptionChange>, ApiError> {
    const F: &str = "pgflow.apply_flow_options";
    let value: Value = call!(
        scalar "apply_flow_options.sql",
        F,
        fetch_one(ex),
        flow_slug,
        shape,
    )?;
    from_json(F, value)
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
        assert_eq!(
            o.differences_between("file", "database"),
            ["Step count differs: 1 in the file, 2 in the database"]
        );
    }

    #[test]
    fn sides_are_named_in_every_template() {
        let cases = [
            (
                "Step at index 2: missing in first shape (second has 'c')",
                "Step at index 2: missing in the file (the database has 'c')",
            ),
            (
                "Step at index 2: missing in second shape (first has 'c')",
                "Step at index 2: missing in the database (the file has 'c')",
            ),
            (
                "Step at index 0: slug differs 'a' vs 'b'",
                "Step at index 0: slug differs: file 'a', database 'b'",
            ),
            (
                "Step at index 1: dependencies differ [a] vs [a, b]",
                "Step at index 1: dependencies differ: file [a], database [a, b]",
            ),
            (
                "Step at index 1: whenUnmet differs 'skip' vs 'fail'",
                "Step at index 1: whenUnmet differs: file 'skip', database 'fail'",
            ),
            ("something else", "something else"),
        ];
        for (upstream, named) in cases {
            assert_eq!(name_sides(upstream, "file", "database"), named);
        }
    }
}
