//! The flow shape JSON (SPEC §6.1) compared by `pgflow.ensure_flow_compiled`,
//! and the conversions between it and flow definitions. Only this module
//! knows both sides: `flow` never imports it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flow::{Flow, FlowDef, FlowOptions, StepDef, StepOptions, StepType, WhenMode};

/// A condition pattern wrapped so "no pattern" differs from a JSON `null`
/// pattern: `{"defined": false}` or `{"defined": true, "value": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputPattern {
    /// Whether a pattern is set.
    pub defined: bool,
    /// The pattern, when defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl From<Option<Value>> for InputPattern {
    fn from(value: Option<Value>) -> Self {
        InputPattern {
            defined: value.is_some(),
            value,
        }
    }
}

/// One step of a [`FlowShape`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeStep {
    /// Step slug.
    pub slug: String,
    /// `single` or `map`.
    pub step_type: StepType,
    /// Parent slugs, sorted.
    pub dependencies: Vec<String>,
    /// Condition mode.
    pub when_unmet: WhenMode,
    /// Exhaustion mode.
    pub when_exhausted: WhenMode,
    /// `if` pattern.
    pub required_input_pattern: InputPattern,
    /// `ifNot` pattern.
    pub forbidden_input_pattern: InputPattern,
    /// Creation-time options; omitted when empty, never compared.
    #[serde(default, skip_serializing_if = "StepOptions::is_empty")]
    pub options: StepOptions,
}

/// The shape of a flow: steps in definition order plus creation options.
/// It has no `flowSlug` key; the slug travels separately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowShape {
    /// Flow options; omitted when empty, never compared.
    #[serde(default, skip_serializing_if = "FlowOptions::is_empty")]
    pub options: FlowOptions,
    /// Steps in definition order.
    pub steps: Vec<ShapeStep>,
}

impl FlowShape {
    /// The shape as JSON, ready to bind as `jsonb`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a flow shape always serializes")
    }

    /// Turns a shape (e.g. one read back from the database or a shape file)
    /// into an unvalidated definition with the given slug.
    pub fn into_def(self, slug: impl Into<String>) -> FlowDef {
        FlowDef {
            slug: slug.into(),
            options: self.options,
            steps: self
                .steps
                .into_iter()
                .map(|s| StepDef {
                    slug: s.slug,
                    step_type: s.step_type,
                    depends_on: s.dependencies,
                    options: s.options,
                    required_input_pattern: s
                        .required_input_pattern
                        .value
                        .filter(|_| s.required_input_pattern.defined),
                    forbidden_input_pattern: s
                        .forbidden_input_pattern
                        .value
                        .filter(|_| s.forbidden_input_pattern.defined),
                    when_unmet: s.when_unmet,
                    when_exhausted: s.when_exhausted,
                })
                .collect(),
        }
    }
}

impl Flow {
    /// The shape JSON of SPEC §6.1, for `pgflow.ensure_flow_compiled`.
    pub fn shape(&self) -> FlowShape {
        FlowShape {
            options: self.options().clone(),
            steps: self
                .steps()
                .iter()
                .map(|s| {
                    let mut dependencies = s.depends_on.clone();
                    dependencies.sort();
                    ShapeStep {
                        slug: s.slug.clone(),
                        step_type: s.step_type,
                        dependencies,
                        when_unmet: s.when_unmet,
                        when_exhausted: s.when_exhausted,
                        required_input_pattern: InputPattern::from(
                            s.required_input_pattern.clone(),
                        ),
                        forbidden_input_pattern: InputPattern::from(
                            s.forbidden_input_pattern.clone(),
                        ),
                        options: s.options.clone(),
                    }
                })
                .collect(),
        }
    }
}
