//! `http`: sends one HTTP request built from templates over the step input.
//!
//! Fields: `url` (required template), `method` (default `GET`), `headers`
//! (name → template), `body` (template, sent as is) or `json_body`
//! (template whose text must be JSON; sent with `content-type:
//! application/json` unless a header sets another), `timeout` (seconds; the
//! step's deadline caps it), `max_response_bytes` (default 1 MiB), `output`
//! (`auto` | `json` | `text`, default `auto`: JSON when the response says
//! so) and `response_headers` (names to copy into the output).
//!
//! Output: `{"status": 200, "headers": {"etag": "..."}, "body": ...}`.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::time::Duration;

use crate::error::{HandlerError, SpecError};
use crate::kind::{BoxFuture, HandlerKind, PreparedHandler};
use crate::output::HandlerOutput;
use crate::response::{
    parse_http_url, read_limited, request_budget, shown_url, status_failure, transport_failure,
};
use crate::spec::{bounded, closest, field, SpecReader};
use crate::task_env::TaskEnv;
use crate::templating::{context, Templates};

const FIELDS: &[&str] = &[
    "url",
    "method",
    "headers",
    "body",
    "json_body",
    "timeout",
    "max_response_bytes",
    "output",
    "response_headers",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Default cap on a response body.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// Bytes of a non-2xx body read for the error message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// The `http` kind.
pub(crate) struct Http;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    None,
    Text,
    Json,
}

#[derive(Debug)]
struct PreparedHttp {
    method: Method,
    templates: Templates,
    /// Header names, each with its template named `handler.headers.<name>`.
    headers: Vec<(HeaderName, String)>,
    body: BodyKind,
    timeout: Option<Duration>,
    max_response_bytes: u64,
    output: OutputFormat,
    response_headers: Vec<HeaderName>,
}

impl HandlerKind for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn prepare(&self, spec: &Value) -> Result<Box<dyn PreparedHandler>, SpecError> {
        let spec = SpecReader::new(spec, self.name(), FIELDS)?;
        let mut templates = Templates::new();

        let method = match spec.optional_str("method")? {
            None => Method::GET,
            Some(given) => {
                let upper = given.to_ascii_uppercase();
                if !METHODS.contains(&upper.as_str()) {
                    let hint = closest(&upper, METHODS.iter().copied())
                        .map(|m| format!("; did you mean \"{m}\"?"))
                        .unwrap_or_default();
                    return Err(SpecError::new(
                        field("method"),
                        format!(
                            "\"{}\" is not one of {}{hint}",
                            bounded(given, 20),
                            METHODS.join(", ")
                        ),
                    ));
                }
                Method::from_bytes(upper.as_bytes()).expect("listed methods are valid")
            }
        };

        let url = spec.required_str("url")?;
        check_url_template(url)?;
        templates.add(field("url"), url)?;

        let mut headers = Vec::new();
        for (name, value) in spec.optional_string_map("headers")? {
            let header_field = format!("{}.{name}", field("headers"));
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                SpecError::new(header_field.clone(), "is not a valid HTTP header name")
            })?;
            templates.add(header_field.clone(), value)?;
            headers.push((header, header_field));
        }

        let body = match (spec.optional_str("body")?, spec.optional_str("json_body")?) {
            (Some(_), Some(_)) => {
                return Err(SpecError::new(
                    field("json_body"),
                    "cannot be combined with handler.body; use one of them",
                ))
            }
            (Some(text), None) => {
                templates.add(field("body"), text)?;
                BodyKind::Text
            }
            (None, Some(text)) => {
                templates.add(field("json_body"), text)?;
                BodyKind::Json
            }
            (None, None) => BodyKind::None,
        };

        let output = match spec.optional_choice("output", &["auto", "json", "text"])? {
            Some("json") => OutputFormat::Json,
            Some("text") => OutputFormat::Text,
            _ => OutputFormat::Auto,
        };

        let response_headers = spec
            .optional_string_list("response_headers")?
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    SpecError::new(
                        format!("{}[{i}]", field("response_headers")),
                        format!("\"{}\" is not a valid HTTP header name", bounded(name, 40)),
                    )
                })
            })
            .collect::<Result<_, _>>()?;

        Ok(Box::new(PreparedHttp {
            method,
            templates,
            headers,
            body,
            timeout: spec.optional_seconds("timeout")?,
            max_response_bytes: spec
                .optional_positive_int("max_response_bytes")?
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            output,
            response_headers,
        }))
    }
}

/// Refuses a URL template whose fixed part already shows it is not
/// http(s). A URL that starts with a variable is checked once rendered.
fn check_url_template(source: &str) -> Result<(), SpecError> {
    let not_http = || {
        SpecError::new(
            field("url"),
            format!("\"{}\" is not an http(s) URL", bounded(source, 200)),
        )
    };
    let fixed = match [source.find("{{"), source.find("{%")]
        .into_iter()
        .flatten()
        .min()
    {
        Some(start) => &source[..start],
        None => return parse_http_url(source).map(drop).map_err(|_| not_http()),
    };
    let fixed = fixed.to_ascii_lowercase();
    let ok = ["http://", "https://"]
        .iter()
        .any(|scheme| fixed.starts_with(scheme) || scheme.starts_with(fixed.as_str()));
    if ok {
        Ok(())
    } else {
        Err(not_http())
    }
}

impl PreparedHttp {
    async fn send(&self, input: Value, task: &TaskEnv) -> Result<HandlerOutput, HandlerError> {
        let ctx = context(&input, task);
        let rendered = self.templates.render(&field("url"), &ctx)?;
        let url = parse_http_url(&rendered).map_err(|e| {
            HandlerError::permanent(format!(
                "handler.url rendered to \"{}\", which is not an http(s) URL ({e})",
                bounded(&rendered, 200)
            ))
        })?;
        let what = format!("{} {}", self.method, shown_url(&url));

        let mut headers = HeaderMap::new();
        for (name, header_field) in &self.headers {
            let value = self.templates.render(header_field, &ctx)?;
            let value = HeaderValue::from_str(&value).map_err(|_| {
                HandlerError::permanent(format!(
                    "{header_field} rendered to a value that is not a valid header value"
                ))
            })?;
            headers.append(name.clone(), value);
        }
        let mut request = task.resources.http.request(self.method.clone(), url);
        match self.body {
            BodyKind::None => {}
            BodyKind::Text => request = request.body(self.templates.render(&field("body"), &ctx)?),
            BodyKind::Json => {
                let text = self.templates.render(&field("json_body"), &ctx)?;
                if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
                    return Err(HandlerError::permanent(format!(
                        "handler.json_body rendered to text that is not JSON ({e}); it began: {}",
                        bounded(text.trim_start(), 200)
                    )));
                }
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                request = request.body(text);
            }
        }

        let budget = request_budget(self.timeout, task)?;
        let mut response = request
            .headers(headers)
            .timeout(budget.timeout)
            .send()
            .await
            .map_err(|e| transport_failure(&what, e, budget))?;
        let status = response.status();
        if !status.is_success() {
            // What the server said helps; a broken or huge error body does not
            // change the verdict.
            let detail = read_limited(&what, &mut response, ERROR_BODY_LIMIT, "", budget)
                .await
                .unwrap_or_default();
            return Err(status_failure(
                &what,
                status,
                response.headers(),
                &String::from_utf8_lossy(&detail),
            ));
        }
        let body = read_limited(
            &what,
            &mut response,
            self.max_response_bytes,
            "handler.max_response_bytes",
            budget,
        )
        .await?;
        let json = match self.output {
            OutputFormat::Json => true,
            OutputFormat::Text => false,
            OutputFormat::Auto => is_json_content_type(response.headers()),
        };
        let body = if json {
            parse_json_body(&what, &body)?
        } else {
            Value::String(String::from_utf8_lossy(&body).into_owned())
        };
        let mut selected = Map::new();
        for name in &self.response_headers {
            let values: Vec<&str> = response
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if !values.is_empty() {
                selected.insert(name.as_str().to_string(), Value::from(values.join(", ")));
            }
        }
        Ok(HandlerOutput::new(json!({
            "status": status.as_u16(),
            "headers": selected,
            "body": body,
        })))
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// A JSON body; an empty body (204, HEAD) is `null`. A body that is not
/// JSON is retryable: remote services send error pages from proxies and
/// cut-off bodies that the next attempt may not get.
fn parse_json_body(what: &str, body: &[u8]) -> Result<Value, HandlerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        HandlerError::retryable(format!(
            "{what}: the response body is not JSON ({e}); it began: {}",
            bounded(String::from_utf8_lossy(body).trim_start(), 200)
        ))
    })
}

impl PreparedHandler for PreparedHttp {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn run<'a>(
        &'a self,
        input: Value,
        task: &'a TaskEnv,
    ) -> BoxFuture<'a, Result<HandlerOutput, HandlerError>> {
        Box::pin(self.send(input, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_templates_are_checked_as_far_as_they_are_fixed() {
        for ok in [
            "https://example.com/a",
            "http://127.0.0.1:8080/{{ id }}",
            "https://{{ host }}/x",
            "{{ url }}",
            "http{{ s }}://example.com",
        ] {
            assert!(check_url_template(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x",
            "example.com/a",
            "ftp://{{ host }}/",
            "file:///etc/passwd",
            "https://",
        ] {
            let err = check_url_template(bad).unwrap_err();
            assert_eq!(err.field(), "handler.url", "{bad}");
        }
    }
}
