//! Flow files: a parsed JSON value (TOML and YAML are converted to JSON
//! first) in either layout, checked key by key, into a [`FlowDef`].
//!
//! - the definition layout: `slug`, flow options (`maxAttempts`,
//!   `baseDelay`, `timeout`) and `steps` with `slug`, `type`, `dependsOn`,
//!   step options, `if`/`ifNot`, `whenUnmet`, `whenExhausted`;
//! - the shape layout (what `ensure_flow_compiled` takes) plus a top-level
//!   `slug`: `options` and `steps` with `stepType`, `dependencies`,
//!   `{defined, value}` patterns and per-step `options`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::FlowError;
use crate::flow::{FlowDef, FlowOptions, StepDef};
use crate::shape::{FlowShape, ShapeStep};
use crate::strict_keys::{self as keys, check};

/// Keys only the shape layout has: one of them (at the top or in a step)
/// makes a file a shape file.
const SHAPE_ONLY_STEP_KEYS: &[&str] = &[
    "stepType",
    "dependencies",
    "requiredInputPattern",
    "forbiddenInputPattern",
    "options",
];

/// Reads a flow file's value in either layout, refusing unknown keys
/// (naming the key, the step and the closest valid key) and values of the
/// wrong type (naming the step). The result still needs
/// [`FlowDef::validate`].
///
/// ```
/// use serde_json::json;
/// let err = pgflow_core::flow_def_from_value(json!({
///     "slug": "etl",
///     "steps": [{"slug": "a"}, {"slug": "b", "dependOn": ["a"]}]
/// })).unwrap_err();
/// assert_eq!(err.to_string(), "unknown key \"dependOn\" in step \"b\": did you mean \"dependsOn\"?");
/// ```
pub fn flow_def_from_value(value: Value) -> Result<FlowDef, FlowError> {
    let top = "the flow file";
    let Value::Object(object) = value else {
        return Err(FlowError::InvalidValue {
            location: top.into(),
            message: "expected an object with `slug` and `steps`".into(),
        });
    };
    let steps = match object.get("steps") {
        None => Vec::new(),
        Some(Value::Array(steps)) => steps.clone(),
        Some(_) => {
            return Err(FlowError::InvalidValue {
                location: top.into(),
                message: "`steps` must be a list of step objects".into(),
            })
        }
    };
    let is_shape = object.contains_key("options")
        || steps.iter().any(|s| {
            s.as_object()
                .is_some_and(|s| s.keys().any(|k| SHAPE_ONLY_STEP_KEYS.contains(&k.as_str())))
        });
    let slug = match object.get("slug") {
        Some(Value::String(slug)) => slug.clone(),
        Some(_) => return Err(invalid(top, "`slug` must be a string")),
        None => return Err(invalid(top, "missing `slug` (the flow's name)")),
    };
    if is_shape {
        shape_def(&object, slug, steps)
    } else {
        definition_def(&object, slug, steps)
    }
}

fn invalid(location: &str, message: &str) -> FlowError {
    FlowError::InvalidValue {
        location: location.into(),
        message: message.into(),
    }
}

/// Where a step is, for messages: `step "load"`, or `step #3` without a slug.
fn step_location(index: usize, step: &Value) -> String {
    match step.get("slug").and_then(Value::as_str) {
        Some(slug) => format!("step {slug:?}"),
        None => format!("step #{}", index + 1),
    }
}

fn step_object<'v>(location: &str, step: &'v Value) -> Result<&'v Map<String, Value>, FlowError> {
    step.as_object()
        .ok_or_else(|| invalid(location, "a step must be an object with at least `slug`"))
}

fn parse<T: DeserializeOwned>(location: &str, value: Value) -> Result<T, FlowError> {
    serde_json::from_value(value).map_err(|e| FlowError::InvalidValue {
        location: location.into(),
        message: e.to_string(),
    })
}

fn definition_def(
    object: &Map<String, Value>,
    slug: String,
    steps: Vec<Value>,
) -> Result<FlowDef, FlowError> {
    check(object, keys::DEF_FLOW_KEYS, "the flow")?;
    let mut options = object.clone();
    options.retain(|k, _| k != "slug" && k != "steps");
    let options: FlowOptions = parse("the flow", Value::Object(options))?;
    let steps = steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| {
            let location = step_location(i, &step);
            check(
                step_object(&location, &step)?,
                keys::DEF_STEP_KEYS,
                &location,
            )?;
            parse::<StepDef>(&location, step)
        })
        .collect::<Result<_, _>>()?;
    Ok(FlowDef {
        slug,
        options,
        steps,
    })
}

fn shape_def(
    object: &Map<String, Value>,
    slug: String,
    steps: Vec<Value>,
) -> Result<FlowDef, FlowError> {
    check(object, keys::SHAPE_FLOW_KEYS, "the flow (shape layout)")?;
    let options = match object.get("options") {
        None => FlowOptions::default(),
        Some(value) => {
            let location = "the flow's options";
            let map = value
                .as_object()
                .ok_or_else(|| invalid(location, "`options` must be an object"))?;
            check(map, keys::SHAPE_FLOW_OPTION_KEYS, location)?;
            parse(location, value.clone())?
        }
    };
    let steps = steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| {
            let location = step_location(i, &step);
            let map = step_object(&location, &step)?;
            check(
                map,
                keys::SHAPE_STEP_KEYS,
                &format!("{location} (shape layout)"),
            )?;
            if let Some(options) = map.get("options").and_then(Value::as_object) {
                check(
                    options,
                    keys::SHAPE_STEP_OPTION_KEYS,
                    &format!("the options of {location}"),
                )?;
            }
            for name in ["requiredInputPattern", "forbiddenInputPattern"] {
                if let Some(pattern) = map.get(name).and_then(Value::as_object) {
                    check(
                        pattern,
                        keys::SHAPE_PATTERN_KEYS,
                        &format!("{name} of {location}"),
                    )?;
                }
            }
            parse::<ShapeStep>(&location, step)
        })
        .collect::<Result<_, _>>()?;
    Ok(FlowShape { options, steps }.into_def(slug))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(value: Value) -> String {
        flow_def_from_value(value).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        assert_eq!(
            message(json!({"slug": "f", "max_attempts": 7, "steps": []})),
            "unknown key \"max_attempts\" in the flow: did you mean \"maxAttempts\"?"
        );
        assert_eq!(
            message(json!({"slug": "f", "steps": [{"slug": "a", "max_attempts": 7}]})),
            "unknown key \"max_attempts\" in step \"a\": did you mean \"maxAttempts\"?"
        );
        assert_eq!(
            message(
                json!({"slug": "f", "steps": [{"slug": "a", "stepType": "single", "options": {"timout": 9}}]})
            ),
            "unknown key \"timout\" in the options of step \"a\": did you mean \"timeout\"?"
        );
        assert_eq!(
            message(json!({"slug": "f", "options": {"retries": 1}, "steps": []})),
            "unknown key \"retries\" in the flow's options (valid keys: maxAttempts, baseDelay, timeout)"
        );
        assert_eq!(
            message(
                json!({"slug": "f", "steps": [{"slug": "a", "dependencies": [],
                "requiredInputPattern": {"defined": false, "vaule": 1}}]})
            ),
            "unknown key \"vaule\" in requiredInputPattern of step \"a\": did you mean \"value\"?"
        );
    }

    #[test]
    fn wrong_values_name_their_step() {
        let text = message(json!({"slug": "f", "steps": [{"slug": "a", "type": "mapp"}]}));
        assert!(
            text.starts_with("step \"a\": unknown variant `mapp`"),
            "{text}"
        );
        assert_eq!(
            message(json!({"steps": []})),
            "the flow file: missing `slug` (the flow's name)"
        );
        assert_eq!(
            message(json!({"slug": "f", "steps": [{"type": "map"}]})),
            "step #1: missing field `slug`"
        );
    }

    #[test]
    fn both_layouts_read() {
        let def = flow_def_from_value(json!({"slug": "f", "maxAttempts": 2, "steps": [
            {"slug": "b", "dependsOn": ["a"]}, {"slug": "a"}]}))
        .unwrap();
        assert_eq!(def.options.max_attempts, Some(2));
        let shape = flow_def_from_value(json!({"slug": "f", "options": {"maxAttempts": 2}, "steps": [
            {"slug": "a", "stepType": "single", "dependencies": [], "whenUnmet": "skip", "whenExhausted": "fail",
             "requiredInputPattern": {"defined": false}, "forbiddenInputPattern": {"defined": false}}]}))
        .unwrap();
        assert_eq!(shape.options.max_attempts, Some(2));
    }
}
