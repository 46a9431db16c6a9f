//! Flow definition files in JSON, TOML or YAML (chosen by extension).
//!
//! Two layouts are accepted, both deserialized by `pgflow-core`:
//! - the definition layout ([`pgflow_core::FlowDef`]): `slug`, flow options
//!   (`maxAttempts`, `baseDelay`, `timeout`) and `steps` with `slug`, `type`,
//!   `dependsOn`, step options, `if`/`ifNot`, `whenUnmet`, `whenExhausted`;
//! - the shape layout (what `pgflow.ensure_flow_compiled` takes) plus a
//!   top-level `slug`: `options` and `steps` with `stepType`,
//!   `dependencies`, `{defined, value}` patterns and per-step `options`.
//!
//! Every key is checked (a typo is an error naming the key, the step and the
//! closest valid key), and steps may be listed in any order.
//!
//! ```toml
//! slug = "etl"
//! maxAttempts = 2
//!
//! [[steps]]
//! slug = "extract"
//!
//! [[steps]]
//! slug = "load"
//! dependsOn = ["extract"]
//! timeout = 30
//! ```
//!
//! In either layout a step may carry a built-in handler spec,
//! `handler = { kind = "http", url = "..." }` (see `pgflow-handlers`): it is
//! configuration stored beside the flow, not part of its shape, so
//! [`load_with_handlers`] takes it out of the step before the definition is
//! read.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use pgflow_core::Flow;
use serde_json::Value;

/// Reads, parses and validates a flow file (ignoring handler specs).
pub fn load(path: &Path) -> anyhow::Result<Flow> {
    load_with_handlers(path).map(|(flow, _)| flow)
}

/// Reads, parses and validates a flow file; also returns the steps'
/// `handler` specs by step slug (not validated here: see
/// `pgflow_handlers::Registry::prepare`).
pub fn load_with_handlers(path: &Path) -> anyhow::Result<(Flow, BTreeMap<String, Value>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read flow file {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mut value =
        parse(&text, &ext).with_context(|| format!("cannot parse {}", path.display()))?;
    let handlers = take_handlers(&mut value)
        .with_context(|| format!("invalid flow definition in {}", path.display()))?;
    let flow = from_value(value)
        .with_context(|| format!("invalid flow definition in {}", path.display()))?;
    Ok((flow, handlers))
}

/// Removes every step's `handler` field from a parsed file and returns them
/// by step slug (a `null` handler counts as none).
pub fn take_handlers(value: &mut Value) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut handlers = BTreeMap::new();
    let Some(steps) = value.get_mut("steps").and_then(Value::as_array_mut) else {
        return Ok(handlers);
    };
    for (i, step) in steps.iter_mut().enumerate() {
        let Some(step) = step.as_object_mut() else {
            continue;
        };
        let Some(spec) = step.remove("handler") else {
            continue;
        };
        if spec.is_null() {
            continue;
        }
        let Some(slug) = step.get("slug").and_then(Value::as_str) else {
            bail!("steps[{i}] has a handler but no slug");
        };
        if handlers.insert(slug.to_string(), spec).is_some() {
            bail!("step {slug:?} appears twice");
        }
    }
    Ok(handlers)
}

/// Parses file text by extension (`json`, `toml`, `yaml`/`yml`) into JSON.
pub fn parse(text: &str, ext: &str) -> anyhow::Result<Value> {
    Ok(match ext {
        "json" => serde_json::from_str(text)?,
        "toml" => toml::from_str(text)?,
        "yaml" | "yml" => serde_norway::from_str(text)?,
        other => bail!("unknown flow file extension {other:?}: use .json, .toml, .yaml or .yml"),
    })
}

/// Builds and validates a flow from a parsed file (either layout). Unknown
/// keys are refused with the closest valid key; steps may come in any order.
pub fn from_value(value: Value) -> anyhow::Result<Flow> {
    Ok(pgflow_core::flow_def_from_value(value)?.validate()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definition_layout_in_all_formats_agrees() {
        let json = r#"{"slug":"etl","maxAttempts":2,"steps":[{"slug":"a"},{"slug":"b","type":"map","dependsOn":["a"],"timeout":30}]}"#;
        let toml = "slug = \"etl\"\nmaxAttempts = 2\n[[steps]]\nslug = \"a\"\n[[steps]]\nslug = \"b\"\ntype = \"map\"\ndependsOn = [\"a\"]\ntimeout = 30\n";
        let yaml = "slug: etl\nmaxAttempts: 2\nsteps:\n  - slug: a\n  - slug: b\n    type: map\n    dependsOn: [a]\n    timeout: 30\n";
        let flows: Vec<Flow> = [(json, "json"), (toml, "toml"), (yaml, "yaml")]
            .into_iter()
            .map(|(text, ext)| from_value(parse(text, ext).unwrap()).unwrap())
            .collect();
        assert_eq!(flows[0], flows[1]);
        assert_eq!(flows[0], flows[2]);
        assert_eq!(flows[0].step("b").unwrap().options.timeout, Some(30));
    }

    #[test]
    fn shape_layout_is_recognised() {
        let flow = from_value(json!({
            "slug": "s",
            "options": {"maxAttempts": 4},
            "steps": [
                {"slug": "a", "stepType": "single", "dependencies": [], "whenUnmet": "skip",
                 "whenExhausted": "fail", "requiredInputPattern": {"defined": false},
                 "forbiddenInputPattern": {"defined": false}},
                {"slug": "b", "stepType": "map", "dependencies": ["a"], "whenUnmet": "skip",
                 "whenExhausted": "fail", "requiredInputPattern": {"defined": false},
                 "forbiddenInputPattern": {"defined": false}, "options": {"timeout": 9}}
            ]
        }))
        .unwrap();
        assert_eq!(flow.options().max_attempts, Some(4));
        assert_eq!(flow.step("b").unwrap().depends_on, vec!["a".to_string()]);
    }

    #[test]
    fn handlers_are_taken_out_of_steps() {
        let yaml = "slug: h\nsteps:\n  - slug: a\n    handler:\n      kind: template\n      template: hi\n  - slug: b\n    dependsOn: [a]\n";
        let mut value = parse(yaml, "yaml").unwrap();
        let handlers = take_handlers(&mut value).unwrap();
        assert_eq!(
            handlers,
            BTreeMap::from([(
                "a".to_string(),
                json!({"kind": "template", "template": "hi"})
            )])
        );
        assert!(value["steps"][0].get("handler").is_none());
        assert_eq!(from_value(value).unwrap().steps().len(), 2);
    }

    #[test]
    fn invalid_definitions_are_refused() {
        let err = from_value(json!({"slug": "x", "steps": [{"slug": "b", "dependsOn": ["a"]}]}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "step \"b\" depends on \"a\", which is not a step of this flow"
        );
        assert!(parse("{}", "ini").is_err());
    }

    #[test]
    fn unknown_keys_in_every_format_are_refused() {
        let toml = "slug = \"etl\"\n[[steps]]\nslug = \"a\"\n[[steps]]\nslug = \"b\"\ndependOn = [\"a\"]\n";
        let yaml = "slug: etl\nsteps:\n  - slug: a\n    max_attempts: 7\n";
        let err = from_value(parse(toml, "toml").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key \"dependOn\" in step \"b\": did you mean \"dependsOn\"?"
        );
        let err = from_value(parse(yaml, "yaml").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key \"max_attempts\" in step \"a\": did you mean \"maxAttempts\"?"
        );
    }
}
