//! minijinja templates shared by the `template`, `http` and `llm` kinds.
//!
//! Every template is compiled when the spec is prepared, under the name of
//! the field it came from, so syntax errors and run-time errors both say
//! which field (`handler.url`, `handler.headers.Accept`, ...) is at fault.
//! Undefined variables are errors: a misspelt name fails the task instead of
//! rendering as an empty string.

use std::fmt;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{HandlerError, SpecError};
use crate::task_env::TaskEnv;

/// The templates of one prepared handler.
pub(crate) struct Templates {
    env: Environment<'static>,
    fields: Vec<String>,
}

impl Templates {
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Output is JSON, URLs, headers and prompts, never HTML.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        Self {
            env,
            fields: Vec::new(),
        }
    }

    /// Compiles `source` as the template for `field`.
    pub(crate) fn add(&mut self, field: String, source: &str) -> Result<(), SpecError> {
        self.env
            .add_template_owned(field.clone(), source.to_string())
            .map_err(|e| SpecError::new(field.clone(), format!("invalid template: {e}")))?;
        self.fields.push(field);
        Ok(())
    }

    /// Renders the template of `field` (which [`add`](Self::add) compiled).
    pub(crate) fn render(
        &self,
        field: &str,
        context: &minijinja::Value,
    ) -> Result<String, HandlerError> {
        let template = self
            .env
            .get_template(field)
            .map_err(|e| HandlerError::permanent(format!("{field}: {e}")))?;
        template
            .render(context)
            .map_err(|e| HandlerError::permanent(format!("{field}: could not render: {e}")))
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("fields", &self.fields)
            .finish()
    }
}

/// The variables a template sees: the input's top-level keys when it is an
/// object, then `input` (the whole input) and `task` (`flow`, `run_id`,
/// `step`, `index`, `attempt`), which win over input keys of the same name.
pub(crate) fn context(input: &Value, task: &TaskEnv) -> minijinja::Value {
    let mut vars = match input {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    vars.insert("input".to_string(), input.clone());
    vars.insert(
        "task".to_string(),
        json!({
            "flow": task.flow,
            "run_id": task.run_id.to_string(),
            "step": task.step,
            "index": task.task_index,
            "attempt": task.attempt,
        }),
    );
    // Deserializing a JSON value into a template value cannot fail.
    minijinja::Value::deserialize(Value::Object(vars)).unwrap_or_default()
}
