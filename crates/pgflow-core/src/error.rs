//! Validation errors for flow definitions.

use crate::slug::{FLOW_SLUG_RULE, STEP_SLUG_RULE};

fn describe_cycle(path: &[String]) -> String {
    match path {
        [only, _] => format!("step {only:?} depends on itself (a cycle: {only} → {only})"),
        _ => format!(
            "steps depend on each other in a cycle: {} (each step depends on the one before it)",
            path.join(" → ")
        ),
    }
}

/// Why a flow definition was rejected before it reached the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The flow slug breaks the `is_valid_slug` rules.
    #[error("invalid flow slug {0:?}: {FLOW_SLUG_RULE}")]
    InvalidFlowSlug(String),
    /// The flow slug is longer than pgmq allows for queue names.
    #[error("flow slug {slug:?} has {len} characters: {FLOW_SLUG_RULE}")]
    FlowSlugTooLong {
        /// The offending slug.
        slug: String,
        /// Its length in characters.
        len: usize,
    },
    /// A step slug breaks the `is_valid_slug` rules.
    #[error("invalid step slug {0:?}: {STEP_SLUG_RULE}")]
    InvalidStepSlug(String),
    /// Two steps share one slug.
    #[error("duplicate step slug {0:?}")]
    DuplicateStep(String),
    /// A step depends on a step the flow does not have.
    #[error(
        "step {step:?} depends on {dependency:?}, which is not a step of this flow{}",
        suggestion.as_ref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default()
    )]
    UnknownDependency {
        /// The dependent step.
        step: String,
        /// The missing dependency.
        dependency: String,
        /// The step slug closest to `dependency`, when one looks like a typo.
        suggestion: Option<String>,
    },
    /// Steps depend on each other in a loop (a step depending on itself
    /// included), so no order can run them.
    #[error("{}", describe_cycle(path))]
    Cycle {
        /// The loop in data-flow order: each step depends on the one before
        /// it, and the first is repeated at the end (`[a, b, a]`).
        path: Vec<String>,
    },
    /// A flow file has a key its place does not allow (typos included).
    #[error(
        "unknown key {key:?} in {location}{}",
        match suggestion {
            Some(s) => format!(": did you mean {s:?}?"),
            None => format!(" (valid keys: {valid})"),
        }
    )]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it is: `the flow`, `step "load"`, `options of step "load"`, ...
        location: String,
        /// The closest valid key, when one is near enough to be a typo.
        suggestion: Option<&'static str>,
        /// The keys allowed there, joined by ", ".
        valid: String,
    },
    /// A flow file value has the wrong type or an unknown word.
    #[error("{location}: {message}")]
    InvalidValue {
        /// Where it is: `the flow`, `step "load"`, ...
        location: String,
        /// What is wrong, as the parser says it.
        message: String,
    },
    /// A step lists a dependency twice.
    #[error("step {step:?} lists dependency {dependency:?} more than once")]
    DuplicateDependency {
        /// The dependent step.
        step: String,
        /// The repeated dependency.
        dependency: String,
    },
    /// A map step has more than one dependency.
    #[error(
        "map step {step:?} can have at most one dependency, but {count} were provided: {deps}"
    )]
    MapStepTooManyDeps {
        /// The map step.
        step: String,
        /// How many dependencies it has.
        count: usize,
        /// The dependencies, joined by ", ".
        deps: String,
    },
    /// An option is out of range (`maxAttempts<1`, `baseDelay<1`, `timeout<3`, `startDelay<0`).
    #[error("{scope}: {option} must be >= {min}, got {value}")]
    InvalidOption {
        /// `flow <slug>` or `step <slug>`.
        scope: String,
        /// The option name as in the shape (`maxAttempts`, ...).
        option: &'static str,
        /// The smallest allowed value.
        min: i32,
        /// The rejected value.
        value: i32,
    },
    /// A condition pattern is not a JSON object.
    #[error("step {step:?}: {pattern} must be a JSON object")]
    PatternNotObject {
        /// The step.
        step: String,
        /// `requiredInputPattern` or `forbiddenInputPattern`.
        pattern: &'static str,
    },
}
