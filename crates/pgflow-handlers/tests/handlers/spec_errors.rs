//! Every spec mistake is refused up front, naming the field.

use pgflow_handlers::Registry;
use serde_json::{json, Value};

use crate::support::{prepare, resources, spec_error};

/// `spec` is refused for `field` with a message that contains `needle`.
#[track_caller]
fn refused(spec: Value, field: &str, needle: &str) {
    let err = spec_error(spec.clone());
    assert_eq!(err.field(), field, "{spec}: {err}");
    assert!(err.message().contains(needle), "{spec}: {err}");
}

#[test]
fn the_full_message_names_flow_step_and_field() {
    let err = spec_error(json!({ "kind": "http", "url": "ftp://x" }));
    assert_eq!(err.field(), "handler.url");
    assert_eq!(err.message(), "\"ftp://x\" is not an http(s) URL");
    assert_eq!(
        err.in_step("news", "fetch").to_string(),
        "flow \"news\", step \"fetch\": handler.url: \"ftp://x\" is not an http(s) URL"
    );
}

#[test]
fn registry_knows_the_five_kinds() {
    let kinds: Vec<_> = Registry::builtin().kinds().collect();
    assert_eq!(kinds, ["exec", "http", "llm", "template", "transform"]);
}

#[test]
fn kind_mistakes() {
    refused(
        json!("http"),
        "handler",
        "expected an object with a \"kind\" field, got a string (\"http\")",
    );
    refused(
        json!({ "url": "https://x" }),
        "handler.kind",
        "missing; one of: exec, http, llm, template, transform",
    );
    refused(
        json!({ "kind": 3 }),
        "handler.kind",
        "expected a string, got a number (3)",
    );
    refused(
        json!({ "kind": "htp" }),
        "handler.kind",
        "unknown kind \"htp\"; did you mean \"http\"? known kinds: exec, http, llm, template, transform",
    );
    refused(
        json!({ "kind": "sql" }),
        "handler.kind",
        "unknown kind \"sql\"; known kinds:",
    );
}

#[test]
fn unknown_fields_suggest_the_closest_one() {
    refused(
        json!({ "kind": "http", "ur": "https://x" }),
        "handler.ur",
        "unknown field for kind \"http\"; did you mean \"url\"? fields: url, method, headers",
    );
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "temprature": 0.5 }),
        "handler.temprature",
        "did you mean \"temperature\"?",
    );
    refused(
        json!({ "kind": "transform", "filtr": "." }),
        "handler.filtr",
        "did you mean \"filter\"?",
    );
    refused(
        json!({ "kind": "template", "template": "x", "colour": "red" }),
        "handler.colour",
        "unknown field for kind \"template\"; fields: template, output",
    );
    refused(
        json!({ "kind": "exec", "command": ["x"], "shell": true }),
        "handler.shell",
        "unknown field for kind \"exec\"",
    );
}

#[test]
fn missing_fields() {
    refused(
        json!({ "kind": "template" }),
        "handler.template",
        "missing (required)",
    );
    refused(
        json!({ "kind": "transform" }),
        "handler.filter",
        "missing (required)",
    );
    refused(
        json!({ "kind": "http", "method": "GET" }),
        "handler.url",
        "missing (required)",
    );
    refused(
        json!({ "kind": "llm", "prompt": "p" }),
        "handler.model",
        "missing (required)",
    );
    refused(
        json!({ "kind": "llm", "model": "m" }),
        "handler.prompt",
        "missing (required)",
    );
    refused(
        json!({ "kind": "exec" }),
        "handler.command",
        "missing (required)",
    );
    refused(
        json!({ "kind": "exec", "command": [] }),
        "handler.command",
        "must name a program",
    );
    refused(
        json!({ "kind": "exec", "command": [""] }),
        "handler.command[0]",
        "must not be empty",
    );
    // null counts as missing (YAML `~`).
    refused(
        json!({ "kind": "http", "url": null }),
        "handler.url",
        "missing (required)",
    );
}

#[test]
fn wrong_types_and_values() {
    refused(
        json!({ "kind": "http", "url": "https://x", "timeout": "5s" }),
        "handler.timeout",
        "expected a number of seconds greater than 0, got a string (\"5s\")",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "timeout": 0 }),
        "handler.timeout",
        "greater than 0",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "method": "FETCH" }),
        "handler.method",
        "\"FETCH\" is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "method": "PSOT" }),
        "handler.method",
        "did you mean \"POST\"?",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "headers": { "X-Count": 3 } }),
        "handler.headers.X-Count",
        "expected a string, got a number (3)",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "headers": { "bad header": "v" } }),
        "handler.headers.bad header",
        "is not a valid HTTP header name",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "headers": ["a"] }),
        "handler.headers",
        "expected an object of strings, got an array",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "body": "a", "json_body": "{}" }),
        "handler.json_body",
        "cannot be combined with handler.body",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "max_response_bytes": 0 }),
        "handler.max_response_bytes",
        "expected a whole number of at least 1, got a number (0)",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "output": "xml" }),
        "handler.output",
        "\"xml\" is not one of auto, json, text",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "response_headers": ["ok", "no good"] }),
        "handler.response_headers[1]",
        "\"no good\" is not a valid HTTP header name",
    );
    refused(
        json!({ "kind": "template", "template": "x", "output": "jsn" }),
        "handler.output",
        "did you mean \"json\"?",
    );
    refused(
        json!({ "kind": "template", "template": 1 }),
        "handler.template",
        "expected a string, got a number (1)",
    );
    refused(
        json!({ "kind": "transform", "filter": ".", "multiple": "yes" }),
        "handler.multiple",
        "expected true or false",
    );
    refused(
        json!({ "kind": "exec", "command": "python3 script.py" }),
        "handler.command",
        "expected an array (program, then arguments; no shell), got a string",
    );
    refused(
        json!({ "kind": "exec", "command": ["x", 1] }),
        "handler.command[1]",
        "expected a string, got a number (1)",
    );
    refused(
        json!({ "kind": "exec", "command": ["x"], "env": { "A=B": "c" } }),
        "handler.env.A=B",
        "not a valid environment variable name",
    );
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "temperature": 3 }),
        "handler.temperature",
        "expected a number from 0 to 2, got a number (3)",
    );
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "max_tokens": -1 }),
        "handler.max_tokens",
        "at least 1",
    );
    refused(
        json!({ "kind": "llm", "model": " ", "prompt": "p" }),
        "handler.model",
        "must not be empty",
    );
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "response_schema": "object" }),
        "handler.response_schema",
        "expected a JSON schema (an object)",
    );
}

#[test]
fn invalid_templates() {
    refused(
        json!({ "kind": "template", "template": "Hello {{ name" }),
        "handler.template",
        "invalid template: syntax error",
    );
    refused(
        json!({ "kind": "template", "template": "{% for x in xs %}" }),
        "handler.template",
        "invalid template",
    );
    refused(
        json!({ "kind": "http", "url": "https://x/{{ id }", "headers": {} }),
        "handler.url",
        "invalid template",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "headers": { "Authorization": "Bearer {{ token" } }),
        "handler.headers.Authorization",
        "invalid template",
    );
    refused(
        json!({ "kind": "http", "url": "https://x", "json_body": "{{ a | }}" }),
        "handler.json_body",
        "invalid template",
    );
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "{% if %}" }),
        "handler.prompt",
        "invalid template",
    );
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "system": "{{" }),
        "handler.system",
        "invalid template",
    );
}

#[test]
fn invalid_jq() {
    refused(
        json!({ "kind": "transform", "filter": ".a | | .b" }),
        "handler.filter",
        "invalid jq filter: expected",
    );
    refused(
        json!({ "kind": "transform", "filter": "[.a" }),
        "handler.filter",
        "invalid jq filter: expected",
    );
    refused(
        json!({ "kind": "transform", "filter": "frobnicate(1)" }),
        "handler.filter",
        "invalid jq filter: undefined filter \"frobnicate\"",
    );
    refused(
        json!({ "kind": "transform", "filter": "$nope" }),
        "handler.filter",
        "undefined variable",
    );
    refused(
        json!({ "kind": "transform", "filter": "include \"x\"; ." }),
        "handler.filter",
        "invalid jq filter",
    );
}

#[test]
fn urls_must_be_http() {
    for url in [
        "ftp://x",
        "file:///etc/passwd",
        "example.com/a",
        "ftp://{{ host }}/a",
        "https://",
    ] {
        refused(
            json!({ "kind": "http", "url": url }),
            "handler.url",
            "is not an http(s) URL",
        );
    }
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "base_url": "ftp://x" }),
        "handler.base_url",
        "\"ftp://x\" is not an http(s) URL",
    );
}

#[test]
fn invalid_schemas() {
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "response_schema": { "type": "nonsense" } }),
        "handler.response_schema",
        "invalid JSON schema",
    );
    // Remote references are not fetched.
    refused(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "response_schema": { "$ref": "https://example.com/schema.json" } }),
        "handler.response_schema",
        "invalid JSON schema",
    );
}

#[test]
fn worker_dependent_checks_happen_at_preflight() {
    let exec = prepare(json!({ "kind": "exec", "command": ["true"] }));
    let err = exec.preflight(&resources()).unwrap_err();
    assert_eq!(err.field(), "handler.kind");
    assert!(err.message().contains("--allow-exec"), "{err}");

    let llm = prepare(
        json!({ "kind": "llm", "model": "m", "prompt": "p", "api_key_env": "NOT_SET_ANYWHERE" }),
    );
    let err = llm.preflight(&resources()).unwrap_err();
    assert_eq!(
        err.in_step("news", "summarise").to_string(),
        "flow \"news\", step \"summarise\": handler.api_key_env: environment variable NOT_SET_ANYWHERE is not set in the worker's environment"
    );

    for kind in [
        json!({ "kind": "template", "template": "x" }),
        json!({ "kind": "transform", "filter": "." }),
        json!({ "kind": "http", "url": "https://example.com" }),
    ] {
        prepare(kind).preflight(&resources()).unwrap();
    }
}
