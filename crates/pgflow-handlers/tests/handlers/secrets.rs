//! The API key reaches the service's Authorization header and nothing
//! else: not errors, not Debug output, not outputs.

use std::time::Duration;

use serde_json::json;

use crate::llm::{completion, keyed_task, spec, KEY, KEY_VAR};
use crate::support::{prepare, resources, spec_error, Reply, Server};

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(KEY), "{what} shows the API key: {text}");
    // Nor a recognisable part of it (services quote keys partly).
    assert!(
        !text.contains(&KEY[..12]),
        "{what} shows part of the API key: {text}"
    );
}

#[tokio::test]
async fn the_key_is_never_in_errors_or_debug_output() {
    let echo = format!("Incorrect API key provided: {KEY}. You can find your key at ...");
    let server = Server::start(vec![
        Reply::json(401, json!({ "error": { "message": echo } })),
        Reply::json(400, json!({ "error": { "message": echo } })),
        Reply::text(500, &echo),
        Reply::raw(
            200,
            "application/json",
            format!("not json {KEY}").into_bytes(),
        ),
        Reply::json(200, completion(&format!("{{\"score\": \"{KEY}\"}}"), 1, 1)),
    ])
    .await;
    let mut spec = spec(&server);
    spec["response_schema"] =
        json!({ "type": "object", "properties": { "score": { "type": "number" } } });
    let handler = prepare(spec);
    let task = keyed_task();
    assert_hidden("prepared handler", &format!("{handler:?}"));
    assert_hidden("task", &format!("{task:?}"));
    assert_hidden("resources", &format!("{:?}", task.resources));

    let input = json!({ "lang": "en", "text": "t" });
    let mut errors = Vec::new();
    for attempt in 0..5 {
        let err = handler.run(input.clone(), &task).await.unwrap_err();
        assert_hidden(&format!("error {attempt}"), &err.to_string());
        assert_hidden(&format!("error {attempt} (Debug)"), &format!("{err:?}"));
        errors.push(err);
    }
    assert_eq!(server.requests().len(), 5);
    // The 401 names the variable instead; the others say where the key was.
    assert!(errors[0].message().contains(KEY_VAR), "{}", errors[0]);
    for err in &errors[1..] {
        assert!(err.message().contains("[redacted]"), "{err}");
    }
}

#[tokio::test]
async fn refused_key_names_the_variable() {
    let server = Server::start(vec![Reply::json(
        401,
        json!({ "error": { "message": format!("Incorrect API key provided: {KEY}") } }),
    )])
    .await;
    let err = prepare(spec(&server))
        .run(json!({ "lang": "en", "text": "t" }), &keyed_task())
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(
        err.message(),
        format!(
            "llm POST {}/v1/chat/completions: HTTP 401 Unauthorized: the service refused the key \
             in {KEY_VAR} (handler.api_key_env)",
            server.base
        )
    );
}

#[test]
fn a_key_pasted_into_the_spec_is_refused_without_echoing_it() {
    let err = spec_error(json!({
        "kind": "llm", "model": "m", "prompt": "p", "api_key": KEY,
    }));
    assert_eq!(err.field(), "handler.api_key");
    assert!(err.message().contains("handler.api_key_env"), "{err}");
    assert_hidden("spec error", &err.to_string());

    let err = spec_error(json!({
        "kind": "llm", "model": "m", "prompt": "p", "api_key_env": KEY,
    }));
    assert_eq!(err.field(), "handler.api_key_env");
    assert_hidden("spec error", &err.to_string());
}

#[tokio::test]
async fn a_missing_key_is_reported_by_name_only() {
    let handler = prepare(json!({
        "kind": "llm", "model": "m", "prompt": "p", "api_key_env": KEY_VAR,
    }));
    let err = handler
        .run(
            json!({}),
            &crate::support::task(resources(), Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    assert!(err.message().contains(KEY_VAR));
}
