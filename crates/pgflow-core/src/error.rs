//! Validation errors for flow definitions.

/// Why a flow definition was rejected before it reached the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The flow slug breaks the `is_valid_slug` rules.
    #[error("invalid flow slug {0:?}: must match ^[a-zA-Z_][a-zA-Z0-9_]*$, not be \"run\", and have 1 to 128 characters")]
    InvalidFlowSlug(String),
    /// The flow slug is longer than pgmq allows for queue names.
    #[error("flow slug {slug:?} has {len} characters; pgmq queue names allow at most 47")]
    FlowSlugTooLong {
        /// The offending slug.
        slug: String,
        /// Its length in characters.
        len: usize,
    },
    /// A step slug breaks the `is_valid_slug` rules.
    #[error("invalid step slug {0:?}: must match ^[a-zA-Z_][a-zA-Z0-9_]*$, not be \"run\", and have 1 to 128 characters")]
    InvalidStepSlug(String),
    /// Two steps share one slug.
    #[error("duplicate step slug {0:?}")]
    DuplicateStep(String),
    /// A step depends on a step not defined before it.
    #[error("step {step:?} depends on unknown step {dependency:?} (dependencies must be defined earlier)")]
    UnknownDependency {
        /// The dependent step.
        step: String,
        /// The missing dependency.
        dependency: String,
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
