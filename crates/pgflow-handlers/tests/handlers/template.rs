use serde_json::json;

use crate::support::{any_task, run};

#[tokio::test]
async fn renders_input_keys_input_and_task() {
    let task = any_task();
    let out = run(
        json!({
            "kind": "template",
            "template": "Hello {{ name }} ({{ input.name }}) from {{ task.flow }}/{{ task.step }} #{{ task.index }} try {{ task.attempt }} run {{ task.run_id }}"
        }),
        json!({ "name": "Ada" }),
        &task,
    )
    .await
    .unwrap();
    assert_eq!(
        out.output,
        json!(format!(
            "Hello Ada (Ada) from news/fetch #0 try 1 run {}",
            task.run_id
        ))
    );
    assert_eq!(out.usage, None);
}

#[tokio::test]
async fn non_object_input_is_only_reachable_as_input() {
    let out = run(
        json!({ "kind": "template", "template": "{{ input | length }} items, first {{ input[0] }}" }),
        json!([7, 8, 9]),
        &any_task(),
    )
    .await
    .unwrap();
    assert_eq!(out.output, json!("3 items, first 7"));
}

#[tokio::test]
async fn input_and_task_win_over_input_keys_of_the_same_name() {
    let out = run(
        json!({ "kind": "template", "template": "{{ task.step }} {{ input.task }}" }),
        json!({ "task": "mine" }),
        &any_task(),
    )
    .await
    .unwrap();
    assert_eq!(out.output, json!("fetch mine"));
}

#[tokio::test]
async fn json_output_parses_the_rendered_text() {
    let out = run(
        json!({
            "kind": "template",
            "output": "json",
            "template": "{\"title\": {{ title | tojson }}, \"count\": {{ items | length }}, \"tags\": {{ items | map(attribute='tag') | list | tojson }}}"
        }),
        json!({ "title": "News \"today\"", "items": [{ "tag": "a" }, { "tag": "b" }] }),
        &any_task(),
    )
    .await
    .unwrap();
    assert_eq!(
        out.output,
        json!({ "title": "News \"today\"", "count": 2, "tags": ["a", "b"] })
    );
}

#[tokio::test]
async fn json_output_that_is_not_json_is_a_permanent_error() {
    let err = run(
        json!({ "kind": "template", "output": "json", "template": "{ title: {{ title }} }" }),
        json!({ "title": "x" }),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message()
            .starts_with("handler.template: output = \"json\" but the rendered text is not JSON"),
        "{err}"
    );
    assert!(err.message().contains("it began: { title: x }"), "{err}");
}

#[tokio::test]
async fn an_undefined_variable_is_an_error_not_an_empty_string() {
    let err = run(
        json!({ "kind": "template", "template": "Hello {{ nmae }}!" }),
        json!({ "name": "Ada" }),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message()
            .starts_with("handler.template: could not render"),
        "{err}"
    );
    assert!(err.message().contains("undefined"), "{err}");
}

#[tokio::test]
async fn html_is_not_escaped() {
    let out = run(
        json!({ "kind": "template", "template": "{{ s }}" }),
        json!({ "s": "<b>&</b>" }),
        &any_task(),
    )
    .await
    .unwrap();
    assert_eq!(out.output, json!("<b>&</b>"));
}
