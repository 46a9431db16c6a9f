//! Built-in pgflow step handlers: steps that need no Rust code.
//!
//! A step's handler spec is a JSON object with a `kind` and that kind's
//! fields. [`Registry::prepare`] validates a spec completely (unknown kind,
//! missing, unknown or mistyped fields, template and jq syntax, URLs, JSON
//! schemas) and returns a [`PreparedHandler`]; a [`SpecError`] names the
//! field, and [`SpecError::in_step`] puts the flow and step in front:
//! `flow "news", step "fetch": handler.url: "ftp://x" is not an http(s) URL`.
//! [`PreparedHandler::preflight`] checks what only the worker knows (exec
//! allowed, API-key variable set); [`PreparedHandler::run`] runs one task
//! with a [`TaskEnv`] and returns a [`HandlerOutput`] (the output, plus
//! [`Usage`] for LLM calls) or a [`HandlerError`] that says whether a retry
//! can help and how long the server asked to wait.
//!
//! ```
//! use std::time::Duration;
//! use pgflow_handlers::{Registry, Resources, TaskEnv};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let handler = Registry::builtin()
//!     .prepare(&json!({ "kind": "transform", "filter": "[.items[] | .price] | add" }))
//!     .unwrap();
//! let task = TaskEnv {
//!     flow: "shop".into(),
//!     run_id: uuid::Uuid::nil(),
//!     step: "total".into(),
//!     task_index: 0,
//!     attempt: 1,
//!     deadline: tokio::time::Instant::now() + Duration::from_secs(30),
//!     resources: Resources::new().unwrap(),
//! };
//! let out = handler
//!     .run(json!({ "items": [{ "price": 2 }, { "price": 3 }] }), &task)
//!     .await
//!     .unwrap();
//! assert_eq!(out.output, json!(5));
//! # }
//! ```
//!
//! # Templates
//!
//! `template`, `http` and `llm` fields marked *template* are
//! [minijinja](https://docs.rs/minijinja) (Jinja2) templates. They see the
//! step input's top-level keys (when the input is an object), `input` (the
//! whole input) and `task` (`flow`, `run_id`, `step`, `index`, `attempt`);
//! `input` and `task` win over input keys of the same name. An undefined
//! variable is an error, not an empty string (`{{ x | default("") }}` and
//! `{% if x is defined %}` still work). Nothing is HTML-escaped; `tojson`
//! and `urlencode` are available. One trailing newline is dropped, as in
//! Jinja.
//!
//! # Kinds
//!
//! **`template`** — `template` (*template*, required), `output`: `"text"`
//! (default) or `"json"`. Output: the rendered string, or with `"json"` the
//! rendered text parsed as JSON (text that is not JSON fails the task).
//!
//! **`transform`** — `filter` (jq program, required), `multiple` (default
//! `false`). Runs the filter on the input with jaq (jq's language and
//! standard library). Output: the single value it yields; no value or more
//! than one fails the task unless `multiple = true`, which collects all
//! values into an array (possibly empty). `env`/`$ENV`, `input`/`inputs`
//! and module imports are not available; `nan` and infinities become `null`.
//!
//! **`http`** — `url` (*template*, required, http or https), `method`
//! (default `GET`), `headers` (name → *template*), `body` (*template*, sent
//! as is) or `json_body` (*template* whose text must be JSON; adds
//! `content-type: application/json` unless `headers` sets one), `timeout`
//! (seconds, capped by the step's timeout), `max_response_bytes` (default
//! 1048576; reading stops past it and the task fails), `output` (`"auto"`
//! (default: JSON when the response's content type is JSON), `"json"`,
//! `"text"`), `response_headers` (names to copy). Output:
//! `{"status": 200, "headers": {"etag": "..."}, "body": ...}` (an empty JSON
//! body is `null`). Failures: 408, 429 and 5xx are retryable and carry
//! `Retry-After` (seconds or HTTP date); other non-2xx statuses are
//! permanent (the request itself is wrong); connection errors and timeouts
//! are retryable; a 2xx body that should be JSON and is not is retryable.
//!
//! **`llm`** — an OpenAI-compatible chat completion: `model` and `prompt`
//! (*template*, the user message) required; `system` (*template*),
//! `base_url` (default `https://api.openai.com/v1`), `temperature` (0–2),
//! `max_tokens`, `response_schema` (JSON schema: sent as a `json_schema`
//! response format and checked locally; remote `$ref`s are not fetched),
//! `api_key_env` (the NAME of the variable holding the key), `timeout`.
//! Output: the reply text, or the parsed JSON with `response_schema`. Usage:
//! the reply's `prompt_tokens` / `completion_tokens`, its model name, the
//! latency. A reply that is not JSON or fails the schema is retryable (and
//! still reports its usage); 401/403 and other 4xx (except 408/429) are
//! permanent. The key is read from the environment per task and never
//! appears in outputs, errors or `Debug` output.
//!
//! **`exec`** — `command` (program and arguments, no shell, required),
//! `env` (extra variables). Runs the program in its own process group with
//! the input as JSON on stdin; output: the one JSON value it prints on
//! stdout (at most 16 MiB). A non-zero exit is retryable; stdout that is not
//! JSON is permanent; both messages end with the end of stderr. At the
//! step's deadline, or when the task is abandoned, the whole group is
//! killed; processes it leaves behind are killed when it exits. Refused
//! unless [`Resources::allow_exec`] (`--allow-exec`) is set.

mod error;
mod kind;
mod kinds;
mod output;
mod registry;
mod response;
mod spec;
mod task_env;
mod templating;

pub use error::{HandlerError, SpecError, StepSpecError};
pub use kind::{BoxFuture, HandlerKind, PreparedHandler};
pub use output::{HandlerOutput, Usage};
pub use registry::Registry;
/// The HTTP client crate [`Resources::http`] is built with.
pub use reqwest;
pub use task_env::{default_http_client, EnvLookup, ProcessEnv, Resources, TaskEnv};
