use std::time::Duration;

use pgflow_handlers::Usage;
use serde_json::{json, Value};

use crate::support::{prepare, resources, resources_with_env, task, Reply, Server};

pub const KEY_VAR: &str = "TEST_LLM_KEY";
pub const KEY: &str = "sk-test-9f8e7d6c5b4a";

/// An OpenAI-style chat completion reply.
pub fn completion(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-test-2025-01-01",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
}

pub fn spec(server: &Server) -> Value {
    json!({
        "kind": "llm",
        "base_url": server.url("/v1/"),
        "model": "gpt-test",
        "system": "You summarise {{ lang }} news.",
        "prompt": "Summarise: {{ text }}",
        "api_key_env": KEY_VAR,
    })
}

fn score_schema() -> Value {
    json!({
        "type": "object",
        "required": ["score", "label"],
        "properties": {
            "score": { "type": "number", "minimum": 0, "maximum": 1 },
            "label": { "type": "string" },
        },
    })
}

pub fn keyed_task() -> pgflow_handlers::TaskEnv {
    task(
        resources_with_env(&[(KEY_VAR, KEY)]),
        Duration::from_secs(60),
    )
}

fn input() -> Value {
    json!({ "lang": "English", "text": "Rust 2.0 released." })
}

#[tokio::test]
async fn completes_with_text_output_and_exact_usage() {
    let server = Server::start(vec![Reply::json(200, completion("A summary.", 1234, 56))]).await;
    let mut spec = spec(&server);
    spec["temperature"] = json!(0.2);
    spec["max_tokens"] = json!(100);
    let out = prepare(spec).run(input(), &keyed_task()).await.unwrap();
    assert_eq!(out.output, json!("A summary."));
    let usage = out.usage.unwrap();
    assert_eq!(
        usage,
        Usage {
            model: "gpt-test-2025-01-01".into(),
            input_tokens: Some(1234),
            output_tokens: Some(56),
            latency: usage.latency,
        }
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(
        request.json(),
        json!({
            "model": "gpt-test",
            "messages": [
                { "role": "system", "content": "You summarise English news." },
                { "role": "user", "content": "Summarise: Rust 2.0 released." },
            ],
            "temperature": 0.2,
            "max_tokens": 100,
        })
    );
}

#[tokio::test]
async fn structured_output_is_requested_validated_and_parsed() {
    let server = Server::start(vec![Reply::json(
        200,
        completion(r#"{"score": 0.8, "label": "positive"}"#, 10, 5),
    )])
    .await;
    let mut spec = spec(&server);
    spec["response_schema"] = score_schema();
    let out = prepare(spec).run(input(), &keyed_task()).await.unwrap();
    assert_eq!(out.output, json!({ "score": 0.8, "label": "positive" }));
    assert_eq!(
        server.requests()[0].json()["response_format"],
        json!({ "type": "json_schema", "json_schema": { "name": "output", "schema": score_schema() } })
    );
}

#[tokio::test]
async fn a_reply_failing_its_schema_is_retryable_and_names_the_error() {
    let server = Server::start(vec![Reply::json(
        200,
        completion(r#"{"score": "high"}"#, 321, 7),
    )])
    .await;
    let mut spec = spec(&server);
    spec["response_schema"] = score_schema();
    let err = prepare(spec).run(input(), &keyed_task()).await.unwrap_err();
    assert!(err.is_retryable());
    let message = err.message();
    assert!(
        message.contains("the reply does not match handler.response_schema"),
        "{message}"
    );
    assert!(
        message.contains("\"label\" is a required property"),
        "{message}"
    );
    assert!(
        message.contains("at /score: \"high\" is not of type \"number\""),
        "{message}"
    );
    // The tokens were spent all the same.
    let usage = err.usage().expect("usage of the failed attempt");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(321), Some(7))
    );
}

#[tokio::test]
async fn a_reply_that_is_not_json_under_a_schema_is_retryable() {
    let server = Server::start(vec![Reply::json(
        200,
        completion("Sure! Here it is:", 1, 1),
    )])
    .await;
    let mut spec = spec(&server);
    spec["response_schema"] = score_schema();
    let err = prepare(spec).run(input(), &keyed_task()).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.message()
            .contains("the reply is not JSON as handler.response_schema requires"),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limited_carries_retry_after() {
    let server = Server::start(vec![Reply::json(
        429,
        json!({ "error": { "message": "Rate limit reached for requests", "type": "requests" } }),
    )
    .header("retry-after", "3")])
    .await;
    let err = prepare(spec(&server))
        .run(input(), &keyed_task())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(
        err.message(),
        format!(
            "llm POST {}/v1/chat/completions: HTTP 429 Too Many Requests: Rate limit reached for requests",
            server.base
        )
    );
}

#[tokio::test]
async fn server_error_then_success() {
    let server = Server::start(vec![
        Reply::json(
            500,
            json!({ "error": { "message": "The server had an error" } }),
        ),
        Reply::json(200, completion("fine", 3, 2)),
    ])
    .await;
    let handler = prepare(spec(&server));
    let first = handler.run(input(), &keyed_task()).await.unwrap_err();
    assert!(first.is_retryable());
    assert!(
        first
            .message()
            .ends_with("HTTP 500 Internal Server Error: The server had an error"),
        "{first}"
    );
    let second = handler.run(input(), &keyed_task()).await.unwrap();
    assert_eq!(second.output, json!("fine"));
    assert_eq!(second.usage.unwrap().output_tokens, Some(2));
}

#[tokio::test]
async fn malformed_reply_is_retryable() {
    let server = Server::start(vec![Reply::raw(
        200,
        "application/json",
        b"{\"choices\": [".to_vec(),
    )])
    .await;
    let err = prepare(spec(&server))
        .run(input(), &keyed_task())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(err.message().contains("the reply is not JSON"), "{err}");
}

#[tokio::test]
async fn a_reply_without_content_is_retryable() {
    let server = Server::start(vec![Reply::json(200, json!({ "choices": [] }))]).await;
    let err = prepare(spec(&server))
        .run(input(), &keyed_task())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.message().contains("the reply has no message content"),
        "{err}"
    );
    // No usage in the reply: the model is the one asked for, tokens unknown.
    let usage = err.usage().unwrap();
    assert_eq!(
        (usage.model.as_str(), usage.input_tokens),
        ("gpt-test", None)
    );
}

#[tokio::test]
async fn slow_reply_times_out() {
    let server = Server::start(vec![Reply::hang()]).await;
    let mut spec = spec(&server);
    spec["timeout"] = json!(0.2);
    let err = prepare(spec).run(input(), &keyed_task()).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.message()
            .ends_with("timed out after 0.2s (handler.timeout)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_key_variable_is_named_and_nothing_is_sent() {
    let server = Server::start(vec![Reply::json(200, completion("x", 1, 1))]).await;
    let handler = prepare(spec(&server));
    let err = handler.preflight(&resources()).unwrap_err();
    assert_eq!(err.field(), "handler.api_key_env");
    assert_eq!(
        err.message(),
        "environment variable TEST_LLM_KEY is not set in the worker's environment"
    );
    let err = handler
        .run(input(), &task(resources(), Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(
        err.message(),
        "handler.api_key_env: environment variable TEST_LLM_KEY is not set in the worker's environment"
    );
    assert!(server.requests().is_empty());
    handler
        .preflight(&resources_with_env(&[(KEY_VAR, KEY)]))
        .unwrap();
}

#[tokio::test]
async fn without_api_key_env_no_authorization_is_sent() {
    let server = Server::start(vec![Reply::json(200, completion("local", 1, 1))]).await;
    let out = prepare(json!({
        "kind": "llm",
        "base_url": server.url("/v1"),
        "model": "llama",
        "prompt": "{{ input | tojson }}",
    }))
    .run(json!([1, 2]), &task(resources(), Duration::from_secs(60)))
    .await
    .unwrap();
    assert_eq!(out.output, json!("local"));
    let request = &server.requests()[0];
    assert!(!request.headers.contains_key("authorization"));
    assert_eq!(
        request.json()["messages"],
        json!([{ "role": "user", "content": "[1, 2]" }])
    );
}
