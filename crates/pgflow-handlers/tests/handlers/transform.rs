use serde_json::{json, Value};

use crate::support::{any_task, run, spec_error};

async fn transform(filter: &str, multiple: bool, input: Value) -> Result<Value, String> {
    run(
        json!({ "kind": "transform", "filter": filter, "multiple": multiple }),
        input,
        &any_task(),
    )
    .await
    .map(|out| out.output)
    .map_err(|e| {
        assert!(!e.is_retryable(), "jq failures are permanent: {e}");
        e.to_string()
    })
}

#[tokio::test]
async fn a_single_result_is_the_output() {
    let input = json!({ "items": [{ "price": 2 }, { "price": 3.5 }] });
    assert_eq!(
        transform(".items | map(.price) | add", false, input).await,
        Ok(json!(5.5))
    );
    assert_eq!(
        transform(
            "{n: (.a | length), first: .a[0]}",
            false,
            json!({ "a": ["x", "y"] })
        )
        .await,
        Ok(json!({ "n": 2, "first": "x" }))
    );
}

#[tokio::test]
async fn several_results_need_multiple() {
    let err = transform(".[]", false, json!([1, 2])).await.unwrap_err();
    assert!(
        err.contains("more than one value; set multiple = true"),
        "{err}"
    );
    assert_eq!(
        transform(".[]", true, json!([1, 2, 3])).await,
        Ok(json!([1, 2, 3]))
    );
}

#[tokio::test]
async fn no_result_is_an_error_unless_multiple() {
    let err = transform("empty", false, json!(1)).await.unwrap_err();
    assert!(err.contains("yielded no value"), "{err}");
    assert_eq!(
        transform(".[] | select(. > 5)", true, json!([1, 2])).await,
        Ok(json!([]))
    );
}

#[tokio::test]
async fn runtime_errors_are_reported() {
    let err = transform(".a.b", false, json!({ "a": 1 }))
        .await
        .unwrap_err();
    assert!(
        err.starts_with("handler.filter: jq error: cannot index 1"),
        "{err}"
    );
    let err = transform("error(\"custom\")", false, json!(null))
        .await
        .unwrap_err();
    assert!(err.contains("custom"), "{err}");
}

#[tokio::test]
async fn halt_fails_the_task_instead_of_exiting_the_worker() {
    let err = transform("halt_error(3)", false, json!("bye"))
        .await
        .unwrap_err();
    assert!(err.contains("halt (exit code 3)"), "{err}");
}

#[tokio::test]
async fn values_without_a_json_form() {
    assert_eq!(
        transform("[1, nan, infinite]", false, json!(null)).await,
        Ok(json!([1, null, null]))
    );
    let err = transform("{(1): 2}", false, json!(null)).await.unwrap_err();
    assert!(err.contains("object key 1 is not a string"), "{err}");
}

#[tokio::test]
async fn the_environment_is_not_reachable() {
    for filter in ["env", "$ENV.HOME", "env.HOME"] {
        let err = spec_error(json!({ "kind": "transform", "filter": filter }));
        assert_eq!(err.field(), "handler.filter", "{filter}");
        assert!(
            err.message().starts_with("invalid jq filter: undefined"),
            "{err}"
        );
    }
}
