//! `llm`: one OpenAI-compatible chat completion, prompts templated from the
//! step input.
//!
//! Fields: `model` and `prompt` (required; `prompt` is the user message
//! template), `system` (template), `base_url` (default
//! `https://api.openai.com/v1`; the request goes to
//! `<base_url>/chat/completions`), `temperature` (0 to 2), `max_tokens`,
//! `response_schema` (a JSON schema: the request asks for structured output
//! and the reply is validated against it before the task completes),
//! `api_key_env` (the name of the environment variable holding the API key,
//! sent as a bearer token) and `timeout` (seconds; the step's deadline caps
//! it).
//!
//! Output: the reply text, or with `response_schema` the reply parsed as
//! JSON. Usage: prompt and completion tokens as the reply reports them, the
//! model the reply names, and the latency.
//!
//! The API key is read from the environment when a task runs. It is never
//! part of the spec, the output or an error message (anything the service
//! sends back is scrubbed of it).

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::time::Instant;
use url::Url;

use crate::error::{HandlerError, SpecError};
use crate::kind::{BoxFuture, HandlerKind, PreparedHandler};
use crate::output::{HandlerOutput, Usage};
use crate::response::{
    parse_http_url, read_limited, request_budget, shown_url, status_failure, transport_failure,
};
use crate::spec::{bounded, field, SpecReader};
use crate::task_env::{Resources, TaskEnv};
use crate::templating::{context, Templates};

const FIELDS: &[&str] = &[
    "model",
    "prompt",
    "system",
    "base_url",
    "temperature",
    "max_tokens",
    "response_schema",
    "api_key_env",
    "timeout",
];

const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Cap on a reply body; a chat completion is far smaller.
const MAX_REPLY_BYTES: u64 = 8 * 1024 * 1024;

/// Schema validation errors listed in a message.
const MAX_SCHEMA_ERRORS: usize = 3;

/// The `llm` kind.
pub(crate) struct Llm;

struct PreparedLlm {
    endpoint: Url,
    model: String,
    templates: Templates,
    has_system: bool,
    temperature: Option<f64>,
    max_tokens: Option<u64>,
    schema: Option<(Value, jsonschema::Validator)>,
    api_key_env: Option<String>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for PreparedLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedLlm")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.model)
            .field("templates", &self.templates)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("response_schema", &self.schema.as_ref().map(|(s, _)| s))
            .field("api_key_env", &self.api_key_env)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HandlerKind for Llm {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn prepare(&self, spec_value: &Value) -> Result<Box<dyn PreparedHandler>, SpecError> {
        // A key pasted into the spec would be stored with the flow: say where
        // it belongs instead of only "unknown field".
        if let Some(key) = spec_value
            .as_object()
            .and_then(|m| m.keys().find(|k| *k == "api_key" || *k == "apikey"))
        {
            return Err(SpecError::new(
                field(key),
                "API keys are never stored in a flow: put the key in an environment variable \
                 of the worker and name that variable in handler.api_key_env",
            ));
        }
        let spec = SpecReader::new(spec_value, self.name(), FIELDS)?;

        let base_url = spec.optional_str("base_url")?.unwrap_or(DEFAULT_BASE_URL);
        let endpoint = parse_http_url(base_url)
            .and_then(|base| chat_completions_url(&base))
            .map_err(|e| {
                SpecError::new(
                    field("base_url"),
                    format!("\"{}\" is not an http(s) URL ({e})", bounded(base_url, 200)),
                )
            })?;

        let model = spec.required_str("model")?;
        if model.trim().is_empty() {
            return Err(SpecError::new(field("model"), "must not be empty"));
        }

        let mut templates = Templates::new();
        templates.add(field("prompt"), spec.required_str("prompt")?)?;
        let has_system = match spec.optional_str("system")? {
            Some(system) => {
                templates.add(field("system"), system)?;
                true
            }
            None => false,
        };

        let schema = match spec.get("response_schema") {
            None => None,
            Some(schema @ (Value::Object(_) | Value::Bool(_))) => {
                let validator = jsonschema::validator_for(schema).map_err(|e| {
                    SpecError::new(
                        field("response_schema"),
                        format!("invalid JSON schema: {}", bounded(&e.to_string(), 300)),
                    )
                })?;
                Some((schema.clone(), validator))
            }
            Some(other) => {
                return Err(SpecError::new(
                    field("response_schema"),
                    format!(
                        "expected a JSON schema (an object), got {}",
                        crate::spec::describe(other)
                    ),
                ))
            }
        };

        let api_key_env = match spec.optional_str("api_key_env")? {
            None => None,
            Some(name) if is_env_var_name(name) => Some(name.to_string()),
            // Never echoed: a value that is not a variable name may be the key.
            Some(_) => {
                return Err(SpecError::new(
                    field("api_key_env"),
                    "must be the NAME of an environment variable (letters, digits and \
                     underscores, not starting with a digit) that holds the key, not the key",
                ))
            }
        };

        Ok(Box::new(PreparedLlm {
            endpoint,
            model: model.to_string(),
            templates,
            has_system,
            temperature: spec.optional_number_in("temperature", 0.0, 2.0)?,
            max_tokens: spec.optional_positive_int("max_tokens")?,
            schema,
            api_key_env,
            timeout: spec.optional_seconds("timeout")?,
        }))
    }
}

fn chat_completions_url(base: &Url) -> Result<Url, String> {
    let joined = format!("{}/chat/completions", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| e.to_string())
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PreparedLlm {
    /// The API key, when the spec names a variable. The error names the
    /// variable, never a value.
    fn api_key(&self, resources: &Resources) -> Result<Option<String>, SpecError> {
        let Some(name) = &self.api_key_env else {
            return Ok(None);
        };
        match resources.env.var(name) {
            Some(key) if !key.is_empty() => Ok(Some(key)),
            _ => Err(SpecError::new(
                field("api_key_env"),
                format!("environment variable {name} is not set in the worker's environment"),
            )),
        }
    }

    fn request_body(&self, input: &Value, task: &TaskEnv) -> Result<Value, HandlerError> {
        let ctx = context(input, task);
        let mut messages = Vec::new();
        if self.has_system {
            let system = self.templates.render(&field("system"), &ctx)?;
            messages.push(json!({ "role": "system", "content": system }));
        }
        let prompt = self.templates.render(&field("prompt"), &ctx)?;
        messages.push(json!({ "role": "user", "content": prompt }));
        let mut body = json!({ "model": self.model, "messages": messages });
        if let Some(t) = self.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(n) = self.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some((schema, _)) = &self.schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": { "name": "output", "schema": schema },
            });
        }
        Ok(body)
    }

    async fn complete(
        &self,
        input: Value,
        task: &TaskEnv,
        key: Option<&str>,
    ) -> Result<HandlerOutput, HandlerError> {
        let what = format!("llm POST {}", shown_url(&self.endpoint));
        let body = self.request_body(&input, task)?;
        let mut request = task.resources.http.post(self.endpoint.clone()).json(&body);
        if let Some(key) = key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                HandlerError::permanent(format!(
                    "handler.api_key_env: the value of {} is not usable in an HTTP header",
                    self.api_key_env.as_deref().unwrap_or_default()
                ))
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let budget = request_budget(self.timeout, task)?;
        let started = Instant::now();
        let mut response = request
            .timeout(budget.timeout)
            .send()
            .await
            .map_err(|e| transport_failure(&what, e, budget))?;
        let status = response.status();
        let reply = read_limited(
            &what,
            &mut response,
            MAX_REPLY_BYTES,
            "the reply limit",
            budget,
        )
        .await?;
        let latency = started.elapsed();

        if !status.is_success() {
            return Err(self.status_error(&what, status, response.headers(), &reply));
        }
        let reply: Value = serde_json::from_slice(&reply).map_err(|e| {
            HandlerError::retryable(format!(
                "{what}: the reply is not JSON ({e}); it began: {}",
                bounded(String::from_utf8_lossy(&reply).trim_start(), 200)
            ))
        })?;
        let usage = Usage {
            model: reply["model"]
                .as_str()
                .unwrap_or(self.model.as_str())
                .to_string(),
            input_tokens: reply["usage"]["prompt_tokens"].as_u64(),
            output_tokens: reply["usage"]["completion_tokens"].as_u64(),
            latency,
        };
        let fail = |message: String| {
            HandlerError::retryable(format!("{what}: {message}")).with_usage(usage.clone())
        };
        let choice = &reply["choices"][0];
        let finish = choice["finish_reason"].as_str().unwrap_or("unknown");
        if let Some(refusal) = choice["message"]["refusal"].as_str() {
            return Err(fail(format!(
                "the model refused: {}",
                bounded(refusal, 300)
            )));
        }
        let Some(content) = choice["message"]["content"].as_str() else {
            return Err(fail(format!(
                "the reply has no message content (finish_reason: {finish})"
            )));
        };
        let output = match &self.schema {
            None => Value::String(content.to_string()),
            Some((_, validator)) => {
                let parsed: Value = serde_json::from_str(content).map_err(|e| {
                    fail(format!(
                        "the reply is not JSON as handler.response_schema requires ({e}; \
                         finish_reason: {finish}); it began: {}",
                        bounded(content.trim_start(), 200)
                    ))
                })?;
                let errors: Vec<String> = validator
                    .iter_errors(&parsed)
                    .take(MAX_SCHEMA_ERRORS)
                    .map(|e| {
                        let at = e.instance_path().to_string();
                        let at = if at.is_empty() { "/".to_string() } else { at };
                        format!("at {at}: {}", bounded(&e.to_string(), 200))
                    })
                    .collect();
                if !errors.is_empty() {
                    return Err(fail(format!(
                        "the reply does not match handler.response_schema: {}",
                        errors.join("; ")
                    )));
                }
                parsed
            }
        };
        Ok(HandlerOutput {
            output,
            usage: Some(usage),
        })
    }

    fn status_error(
        &self,
        what: &str,
        status: StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> HandlerError {
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            // Services quote (part of) a wrong key back; say nothing of it.
            let hint = match &self.api_key_env {
                Some(name) => {
                    format!("the service refused the key in {name} (handler.api_key_env)")
                }
                None => "the service wants an API key: name its variable in handler.api_key_env"
                    .to_string(),
            };
            return status_failure(what, status, headers, &hint);
        }
        // OpenAI-style `{"error": {"message": ...}}`, else the raw body.
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let detail = parsed
            .as_ref()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        status_failure(what, status, headers, &detail)
    }
}

impl PreparedHandler for PreparedLlm {
    fn kind(&self) -> &'static str {
        "llm"
    }

    fn preflight(&self, resources: &Resources) -> Result<(), SpecError> {
        self.api_key(resources).map(drop)
    }

    fn run<'a>(
        &'a self,
        input: Value,
        task: &'a TaskEnv,
    ) -> BoxFuture<'a, Result<HandlerOutput, HandlerError>> {
        Box::pin(async move {
            let key = self
                .api_key(&task.resources)
                .map_err(|e| HandlerError::permanent(e.to_string()))?;
            let result = self.complete(input, task, key.as_deref()).await;
            match key {
                Some(key) => result.map_err(|e| e.scrub(&key)),
                None => result,
            }
        })
    }
}
