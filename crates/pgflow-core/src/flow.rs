//! Flow and step definitions, the builder, and validation.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FlowError;
use crate::graph::topological_order;
use crate::slug::{is_valid_slug, MAX_FLOW_SLUG_LEN};
use crate::strict_keys::closest;

/// Flow-level defaults. `None` means "use the database default" (3 attempts,
/// base delay 5 s, timeout 60 s, as `pgflow.create_flow` stores them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowOptions {
    /// Attempts per task before it is exhausted (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    /// Base of the exponential retry delay, in seconds (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_delay: Option<i32>,
    /// Seconds a task may run before it counts as stalled (>= 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
}

impl FlowOptions {
    /// True when no option is set (the shape then omits `options`).
    pub fn is_empty(&self) -> bool {
        self.max_attempts.is_none() && self.base_delay.is_none() && self.timeout.is_none()
    }
}

/// Per-step overrides of the flow options, plus the step-only start delay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOptions {
    /// Overrides [`FlowOptions::max_attempts`] (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    /// Overrides [`FlowOptions::base_delay`] (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_delay: Option<i32>,
    /// Overrides [`FlowOptions::timeout`] (>= 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    /// Seconds to delay the first delivery of this step's tasks (>= 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_delay: Option<i32>,
}

impl StepOptions {
    /// True when no option is set (the shape then omits `options`).
    pub fn is_empty(&self) -> bool {
        self.max_attempts.is_none()
            && self.base_delay.is_none()
            && self.timeout.is_none()
            && self.start_delay.is_none()
    }
}

/// `single`: one task; `map`: one task per element of the input array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepType {
    /// One task per run.
    #[default]
    Single,
    /// One task per array element (root map: the run input; else the parent output).
    Map,
}

impl StepType {
    /// The SQL spelling (`single` / `map`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepType::Single => "single",
            StepType::Map => "map",
        }
    }
}

/// What happens when a condition is unmet (`whenUnmet`) or a task exhausts its
/// attempts (`whenExhausted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenMode {
    /// Fail the step and the run.
    Fail,
    /// Skip the step; dependents run without its key.
    Skip,
    /// Skip the step and every transitive dependent.
    SkipCascade,
}

impl WhenMode {
    /// The SQL spelling (`fail` / `skip` / `skip-cascade`).
    pub fn as_str(self) -> &'static str {
        match self {
            WhenMode::Fail => "fail",
            WhenMode::Skip => "skip",
            WhenMode::SkipCascade => "skip-cascade",
        }
    }
}

fn default_when_unmet() -> WhenMode {
    WhenMode::Skip
}
fn default_when_exhausted() -> WhenMode {
    WhenMode::Fail
}

/// One step of a flow, as written by a user or read from a flow file.
///
/// ```
/// use pgflow_core::{StepDef, WhenMode};
/// use serde_json::json;
///
/// let step = StepDef::single("notify_vip")
///     .depends_on(["fetch_customer"])
///     .required(json!({"fetch_customer": {"tier": "vip"}}))
///     .when_unmet(WhenMode::Skip)
///     .max_attempts(2);
/// assert_eq!(step.depends_on, vec!["fetch_customer".to_string()]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepDef {
    /// The step slug (valid slug, unique within the flow).
    pub slug: String,
    /// `single` (default) or `map`.
    #[serde(default, rename = "type")]
    pub step_type: StepType,
    /// Parent step slugs, in any order of the steps (they are sorted). A map
    /// has at most one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Option overrides.
    #[serde(flatten)]
    pub options: StepOptions,
    /// `if`: the step runs only when its input contains this JSON object (`@>`).
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub required_input_pattern: Option<Value>,
    /// `ifNot`: the step runs only when its input does not contain this object.
    #[serde(default, rename = "ifNot", skip_serializing_if = "Option::is_none")]
    pub forbidden_input_pattern: Option<Value>,
    /// What an unmet condition does (default `skip`).
    #[serde(default = "default_when_unmet")]
    pub when_unmet: WhenMode,
    /// What exhausting the attempts does (default `fail`).
    #[serde(default = "default_when_exhausted")]
    pub when_exhausted: WhenMode,
}

impl StepDef {
    fn new(slug: impl Into<String>, step_type: StepType) -> Self {
        StepDef {
            slug: slug.into(),
            step_type,
            depends_on: Vec::new(),
            options: StepOptions::default(),
            required_input_pattern: None,
            forbidden_input_pattern: None,
            when_unmet: WhenMode::Skip,
            when_exhausted: WhenMode::Fail,
        }
    }

    /// A `single` step (one task per run).
    pub fn single(slug: impl Into<String>) -> Self {
        Self::new(slug, StepType::Single)
    }

    /// A `map` step; without [`StepDef::array`] it maps over the run input.
    pub fn map(slug: impl Into<String>) -> Self {
        Self::new(slug, StepType::Map)
    }

    /// For a map step: the one parent whose output array is mapped over.
    pub fn array(mut self, parent: impl Into<String>) -> Self {
        self.depends_on = vec![parent.into()];
        self
    }

    /// Adds parent steps.
    pub fn depends_on<I, S>(mut self, parents: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(parents.into_iter().map(Into::into));
        self
    }

    /// Overrides the flow's `maxAttempts` for this step.
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.options.max_attempts = Some(n);
        self
    }

    /// Overrides the flow's `baseDelay` (seconds) for this step.
    pub fn base_delay(mut self, secs: i32) -> Self {
        self.options.base_delay = Some(secs);
        self
    }

    /// Overrides the flow's `timeout` (seconds) for this step.
    pub fn timeout(mut self, secs: i32) -> Self {
        self.options.timeout = Some(secs);
        self
    }

    /// Delays the first delivery of this step's tasks (seconds).
    pub fn start_delay(mut self, secs: i32) -> Self {
        self.options.start_delay = Some(secs);
        self
    }

    /// `if`: run only when the step input contains `pattern`.
    pub fn required(mut self, pattern: Value) -> Self {
        self.required_input_pattern = Some(pattern);
        self
    }

    /// `ifNot`: run only when the step input does not contain `pattern`.
    pub fn forbidden(mut self, pattern: Value) -> Self {
        self.forbidden_input_pattern = Some(pattern);
        self
    }

    /// What an unmet condition does.
    pub fn when_unmet(mut self, mode: WhenMode) -> Self {
        self.when_unmet = mode;
        self
    }

    /// What exhausting the attempts does.
    pub fn when_exhausted(mut self, mode: WhenMode) -> Self {
        self.when_exhausted = mode;
        self
    }
}

/// An unvalidated flow definition: what a user builds or a flow file holds
/// (JSON, TOML or YAML through serde). Call [`FlowDef::validate`] to get a
/// [`Flow`].
///
/// ```
/// let def: pgflow_core::FlowDef = serde_json::from_str(r#"{
///   "slug": "etl", "maxAttempts": 2,
///   "steps": [
///     {"slug": "extract"},
///     {"slug": "load", "dependsOn": ["extract"], "timeout": 30}
///   ]}"#).unwrap();
/// let flow = def.validate().unwrap();
/// assert_eq!(flow.steps().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowDef {
    /// The flow slug; also the pgmq queue name.
    pub slug: String,
    /// Flow-level defaults.
    #[serde(flatten)]
    pub options: FlowOptions,
    /// Steps, in any order: [`FlowDef::validate`] sorts them so each comes
    /// after its dependencies (keeping the given order where it can).
    #[serde(default)]
    pub steps: Vec<StepDef>,
}

impl FlowDef {
    /// Checks every rule the DSL and the SQL constraints enforce, so a
    /// [`Flow`] never fails on `create_flow`/`add_step`, and puts the steps
    /// in dependency order. A loop of dependencies is a [`FlowError::Cycle`]
    /// naming its path.
    pub fn validate(self) -> Result<Flow, FlowError> {
        if !is_valid_slug(&self.slug) {
            return Err(FlowError::InvalidFlowSlug(self.slug));
        }
        let len = self.slug.chars().count();
        if len > MAX_FLOW_SLUG_LEN {
            return Err(FlowError::FlowSlugTooLong {
                slug: self.slug,
                len,
            });
        }
        let scope = format!("flow {}", self.slug);
        check_min(&scope, "maxAttempts", self.options.max_attempts, 1)?;
        check_min(&scope, "baseDelay", self.options.base_delay, 1)?;
        check_min(&scope, "timeout", self.options.timeout, 3)?;

        let all: HashSet<&str> = self.steps.iter().map(|s| s.slug.as_str()).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        for step in &self.steps {
            if !is_valid_slug(&step.slug) {
                return Err(FlowError::InvalidStepSlug(step.slug.clone()));
            }
            if !seen.insert(&step.slug) {
                return Err(FlowError::DuplicateStep(step.slug.clone()));
            }
            let mut deps: HashSet<&str> = HashSet::new();
            for dep in &step.depends_on {
                // Any order is accepted (sorted below); a step depending on
                // itself is a cycle, reported as one by the sort.
                if !all.contains(dep.as_str()) {
                    return Err(FlowError::UnknownDependency {
                        step: step.slug.clone(),
                        dependency: dep.clone(),
                        suggestion: closest(dep, all.iter().copied()).map(str::to_string),
                    });
                }
                if !deps.insert(dep) {
                    return Err(FlowError::DuplicateDependency {
                        step: step.slug.clone(),
                        dependency: dep.clone(),
                    });
                }
            }
            if step.step_type == StepType::Map && step.depends_on.len() > 1 {
                return Err(FlowError::MapStepTooManyDeps {
                    step: step.slug.clone(),
                    count: step.depends_on.len(),
                    deps: step.depends_on.join(", "),
                });
            }
            let scope = format!("step {}", step.slug);
            check_min(&scope, "maxAttempts", step.options.max_attempts, 1)?;
            check_min(&scope, "baseDelay", step.options.base_delay, 1)?;
            check_min(&scope, "timeout", step.options.timeout, 3)?;
            check_min(&scope, "startDelay", step.options.start_delay, 0)?;
            for (pattern, name) in [
                (&step.required_input_pattern, "requiredInputPattern"),
                (&step.forbidden_input_pattern, "forbiddenInputPattern"),
            ] {
                if matches!(pattern, Some(p) if !p.is_object()) {
                    return Err(FlowError::PatternNotObject {
                        step: step.slug.clone(),
                        pattern: name,
                    });
                }
            }
        }
        // The database stores steps in dependency order (step_index), so
        // sort them; a list already in order keeps it.
        let order = {
            let edges: Vec<(&str, &[String])> = self
                .steps
                .iter()
                .map(|s| (s.slug.as_str(), s.depends_on.as_slice()))
                .collect();
            topological_order(&edges)?
        };
        let mut slots: Vec<Option<StepDef>> = self.steps.into_iter().map(Some).collect();
        let steps = order
            .into_iter()
            .map(|i| slots[i].take().expect("each index appears once"))
            .collect();
        let def = FlowDef {
            slug: self.slug,
            options: self.options,
            steps,
        };
        Ok(Flow { def })
    }
}

fn check_min(
    scope: &str,
    option: &'static str,
    value: Option<i32>,
    min: i32,
) -> Result<(), FlowError> {
    match value {
        Some(value) if value < min => Err(FlowError::InvalidOption {
            scope: scope.to_string(),
            option,
            min,
            value,
        }),
        _ => Ok(()),
    }
}

/// A validated flow definition. Build one with [`FlowBuilder`] or
/// [`FlowDef::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    def: FlowDef,
}

impl Flow {
    /// The flow slug (also the queue name).
    pub fn slug(&self) -> &str {
        &self.def.slug
    }

    /// Flow-level options.
    pub fn options(&self) -> &FlowOptions {
        &self.def.options
    }

    /// Steps in dependency order (each after its dependencies; the order
    /// they were defined in where that allows).
    pub fn steps(&self) -> &[StepDef] {
        &self.def.steps
    }

    /// The step with this slug, if any.
    pub fn step(&self, slug: &str) -> Option<&StepDef> {
        self.def.steps.iter().find(|s| s.slug == slug)
    }

    /// The definition this flow was validated from.
    pub fn def(&self) -> &FlowDef {
        &self.def
    }

    /// The timeout (seconds) a step's tasks get as defined here: the step's
    /// own, else the flow's, else the database default of 60.
    pub fn step_timeout(&self, step_slug: &str) -> i32 {
        self.step(step_slug)
            .and_then(|s| s.options.timeout)
            .or(self.def.options.timeout)
            .unwrap_or(60)
    }
}

/// Builds and validates a [`Flow`].
///
/// ```
/// use pgflow_core::{FlowBuilder, FlowError, StepDef};
///
/// let err = FlowBuilder::new("bad")
///     .step(StepDef::single("b").depends_on(["a"]))
///     .step(StepDef::single("a").depends_on(["b"]))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.to_string(), "steps depend on each other in a cycle: b → a → b \
///     (each step depends on the one before it)");
/// ```
#[derive(Debug, Clone)]
pub struct FlowBuilder {
    def: FlowDef,
}

impl FlowBuilder {
    /// Starts a flow with this slug and no options.
    pub fn new(slug: impl Into<String>) -> Self {
        FlowBuilder {
            def: FlowDef {
                slug: slug.into(),
                options: FlowOptions::default(),
                steps: Vec::new(),
            },
        }
    }

    /// Default attempts per task (>= 1).
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.def.options.max_attempts = Some(n);
        self
    }

    /// Default retry base delay in seconds (>= 1).
    pub fn base_delay(mut self, secs: i32) -> Self {
        self.def.options.base_delay = Some(secs);
        self
    }

    /// Default task timeout in seconds (>= 3).
    pub fn timeout(mut self, secs: i32) -> Self {
        self.def.options.timeout = Some(secs);
        self
    }

    /// Adds a step (its dependencies may be added before or after it).
    pub fn step(mut self, step: StepDef) -> Self {
        self.def.steps.push(step);
        self
    }

    /// Validates and returns the flow.
    pub fn build(self) -> Result<Flow, FlowError> {
        self.def.validate()
    }
}
