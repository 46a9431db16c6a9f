//! `template`: renders a minijinja template over the step input.
//!
//! Fields: `template` (required), `output` = `"text"` (default: the
//! rendered string) or `"json"` (the rendered text parsed as JSON).

use serde_json::Value;

use crate::error::{HandlerError, SpecError};
use crate::kind::{BoxFuture, HandlerKind, PreparedHandler};
use crate::output::HandlerOutput;
use crate::spec::{bounded, field, SpecReader};
use crate::task_env::TaskEnv;
use crate::templating::{context, Templates};

const FIELDS: &[&str] = &["template", "output"];

/// The `template` kind.
pub(crate) struct Template;

impl HandlerKind for Template {
    fn name(&self) -> &'static str {
        "template"
    }

    fn prepare(&self, spec: &Value) -> Result<Box<dyn PreparedHandler>, SpecError> {
        let spec = SpecReader::new(spec, self.name(), FIELDS)?;
        let source = spec.required_str("template")?;
        let json = spec.optional_choice("output", &["text", "json"])? == Some("json");
        let mut templates = Templates::new();
        templates.add(field("template"), source)?;
        Ok(Box::new(PreparedTemplate { templates, json }))
    }
}

#[derive(Debug)]
struct PreparedTemplate {
    templates: Templates,
    json: bool,
}

impl PreparedHandler for PreparedTemplate {
    fn kind(&self) -> &'static str {
        "template"
    }

    fn run<'a>(
        &'a self,
        input: Value,
        task: &'a TaskEnv,
    ) -> BoxFuture<'a, Result<HandlerOutput, HandlerError>> {
        Box::pin(async move {
            let text = self
                .templates
                .render(&field("template"), &context(&input, task))?;
            let output = if self.json {
                serde_json::from_str(&text).map_err(|e| {
                    HandlerError::permanent(format!(
                        "handler.template: output = \"json\" but the rendered text is not JSON \
                         ({e}); it began: {}",
                        bounded(text.trim_start(), 200)
                    ))
                })?
            } else {
                Value::String(text)
            };
            Ok(HandlerOutput::new(output))
        })
    }
}
