use std::time::Duration;

use serde_json::json;

use crate::support::{any_task, prepare, resources, run, task, Reply, Server};

#[tokio::test]
async fn get_json_with_templated_url_and_selected_headers() {
    let server = Server::start(vec![Reply::json(200, json!({ "hello": "world" }))
        .header("x-request-id", "abc")
        .header("x-other", "ignored")])
    .await;
    let out = run(
        json!({
            "kind": "http",
            "url": format!("{}/items/{{{{ id }}}}?q={{{{ q | urlencode }}}}", server.base),
            "response_headers": ["X-Request-Id", "x-missing"],
        }),
        json!({ "id": 42, "q": "a b" }),
        &any_task(),
    )
    .await
    .unwrap();
    assert_eq!(
        out.output,
        json!({ "status": 200, "headers": { "x-request-id": "abc" }, "body": { "hello": "world" } })
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/items/42");
}

#[tokio::test]
async fn post_sends_rendered_headers_and_json_body() {
    let server = Server::start(vec![Reply::text(201, "created")]).await;
    let task = any_task();
    let input = json!({ "token": "t0k", "doc": { "title": "x", "n": [1, 2] } });
    let out = run(
        json!({
            "kind": "http",
            "method": "post",
            "url": server.url("/docs"),
            "headers": {
                "Authorization": "Bearer {{ token }}",
                "Idempotency-Key": "{{ task.run_id }}-{{ task.step }}-{{ task.index }}",
            },
            "json_body": "{{ doc | tojson }}",
        }),
        input.clone(),
        &task,
    )
    .await
    .unwrap();
    assert_eq!(
        out.output,
        json!({ "status": 201, "headers": {}, "body": "created" })
    );
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.headers["authorization"], "Bearer t0k");
    assert_eq!(
        request.headers["idempotency-key"],
        format!("{}-fetch-0", task.run_id)
    );
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.json(), input["doc"]);
}

#[tokio::test]
async fn text_body_is_sent_as_rendered() {
    let server = Server::start(vec![Reply::text(200, "ok")]).await;
    run(
        json!({
            "kind": "http",
            "method": "PUT",
            "url": server.url("/note"),
            "headers": { "content-type": "text/plain" },
            "body": "Note for {{ who }}",
        }),
        json!({ "who": "Bob" }),
        &any_task(),
    )
    .await
    .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.body, b"Note for Bob");
    assert_eq!(request.headers["content-type"], "text/plain");
}

#[tokio::test]
async fn output_format_overrides_content_type() {
    let server = Server::start(vec![Reply::text(200, "{\"a\": 1}")]).await;
    let spec = |output: &str| json!({ "kind": "http", "url": server.url("/"), "output": output });
    let out = run(spec("json"), json!({}), &any_task()).await.unwrap();
    assert_eq!(out.output["body"], json!({ "a": 1 }));
    let out = run(spec("auto"), json!({}), &any_task()).await.unwrap();
    assert_eq!(out.output["body"], json!("{\"a\": 1}"));
    let out = run(spec("text"), json!({}), &any_task()).await.unwrap();
    assert_eq!(out.output["body"], json!("{\"a\": 1}"));
}

#[tokio::test]
async fn rate_limited_is_retryable_with_retry_after_seconds() {
    let server = Server::start(vec![
        Reply::text(429, "slow down").header("retry-after", "7")
    ])
    .await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/x") }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        err.message(),
        format!(
            "GET {}/x: HTTP 429 Too Many Requests: slow down",
            server.base
        )
    );
}

#[tokio::test]
async fn unavailable_is_retryable_with_retry_after_date() {
    let at = std::time::SystemTime::now() + Duration::from_secs(120);
    let server = Server::start(vec![
        Reply::text(503, "maintenance").header("retry-after", &httpdate::fmt_http_date(at))
    ])
    .await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/") }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    let delay = err.retry_after().expect("retry_after from the date");
    assert!(
        delay <= Duration::from_secs(120) && delay >= Duration::from_secs(100),
        "{delay:?}"
    );
}

#[tokio::test]
async fn server_error_then_success_on_the_next_attempt() {
    let server = Server::start(vec![
        Reply::text(500, "oops"),
        Reply::json(200, json!({ "ok": true })),
    ])
    .await;
    let handler = prepare(json!({ "kind": "http", "url": server.url("/flaky") }));
    let first = handler.run(json!({}), &any_task()).await.unwrap_err();
    assert!(first.is_retryable());
    assert_eq!(first.retry_after(), None);
    assert!(
        first
            .message()
            .ends_with("HTTP 500 Internal Server Error: oops"),
        "{first}"
    );
    let second = handler.run(json!({}), &any_task()).await.unwrap();
    assert_eq!(second.output["body"], json!({ "ok": true }));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn client_errors_are_permanent_and_quote_the_body() {
    let server = Server::start(vec![Reply::json(404, json!({ "error": "no such item" }))]).await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/items/9?key=secret") }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(
        err.message(),
        format!(
            "GET {}/items/9: HTTP 404 Not Found: {{\"error\":\"no such item\"}}",
            server.base
        )
    );
}

#[tokio::test]
async fn request_timeout_status_is_retryable() {
    let server = Server::start(vec![Reply::text(408, "")]).await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/") }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn malformed_json_is_retryable() {
    let server = Server::start(vec![Reply::raw(
        200,
        "application/json",
        b"{\"a\": ".to_vec(),
    )])
    .await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/") }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.message().contains("the response body is not JSON"),
        "{err}"
    );
    assert!(err.message().contains("it began: {\"a\":"), "{err}");
}

#[tokio::test]
async fn slow_response_times_out_at_the_spec_timeout() {
    let server = Server::start(vec![Reply::hang()]).await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/slow"), "timeout": 0.2 }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(
        err.message(),
        format!(
            "GET {}/slow: timed out after 0.2s (handler.timeout)",
            server.base
        )
    );
}

#[tokio::test]
async fn the_step_deadline_caps_the_spec_timeout() {
    let server = Server::start(vec![Reply::hang()]).await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/slow"), "timeout": 600 }),
        json!({}),
        &task(resources(), Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    assert!(err.message().ends_with("(the step's timeout)"), "{err}");
}

#[tokio::test]
async fn a_large_response_is_refused_by_its_length() {
    let server = Server::start(vec![Reply::text(200, &"x".repeat(1024 * 1024 + 1))]).await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/big") }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message().ends_with(
            "the response body is larger than handler.max_response_bytes (1048576 bytes); stopped reading"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_endless_response_stops_at_the_limit() {
    let server = Server::start(vec![Reply::endless()]).await;
    let err = run(
        json!({ "kind": "http", "url": server.url("/stream"), "max_response_bytes": 100000 }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(
        err.message()
            .contains("larger than handler.max_response_bytes (100000 bytes)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let err = run(
        json!({ "kind": "http", "url": url }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    assert!(err.message().starts_with(&format!("GET {url}: ")), "{err}");
}

#[tokio::test]
async fn a_rendered_url_that_is_not_http_is_permanent() {
    let err = run(
        json!({ "kind": "http", "url": "{{ target }}" }),
        json!({ "target": "ftp://files.example.com/a" }),
        &any_task(),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.message().starts_with(
            "handler.url rendered to \"ftp://files.example.com/a\", which is not an http(s) URL"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn no_content_gives_a_null_json_body() {
    let server = Server::start(vec![Reply::raw(204, "application/json", Vec::new())]).await;
    let out = run(
        json!({ "kind": "http", "method": "DELETE", "url": server.url("/x") }),
        json!({}),
        &any_task(),
    )
    .await
    .unwrap();
    assert_eq!(
        out.output,
        json!({ "status": 204, "headers": {}, "body": null })
    );
}
