//! The security model over real HTTP: escaping, hostile filters, read-only
//! mode, the auth token, CSRF and origin checks, the Host check, and the
//! refusal to listen publicly without a token.

use crate::support;

use pgflow_dashboard::{Dashboard, DashboardConfig, StartError};
use serde_json::Value;
use support::{csrf_from, run_status, Fixture, HOSTILE_ERROR, HOSTILE_OUTPUT};

#[tokio::test]
async fn step_outputs_and_errors_are_shown_escaped() {
    let fx = Fixture::new().await;
    let (status, html) = fx.get(&format!("/runs/{}", fx.runs.completed)).await;
    assert_eq!(status, 200);
    // The map's first task output and the fetch step's output carry it.
    assert!(!html.contains(HOSTILE_OUTPUT), "raw <script> in the page");
    assert!(!html.contains("<script>alert"), "raw <script> in the page");
    assert!(
        html.contains("&lt;script&gt;alert('pwned')&lt;/script&gt;"),
        "escaped output shown"
    );
    let (_, html) = fx.get(&format!("/runs/{}", fx.runs.failed)).await;
    assert!(!html.contains(HOSTILE_ERROR));
    assert!(html.contains("boom: &lt;b&gt;upstream&lt;/b&gt; said no"));
    // The only <script> elements are our own.
    for page in ["/runs", "/flows/demo", "/workers", "/queues"] {
        let (_, html) = fx.get(page).await;
        assert_eq!(html.matches("<script").count(), 1, "{page}");
        assert!(
            html.contains("<script src=\"/assets/app.js\" defer>"),
            "{page}"
        );
    }
    let (_, html) = fx.get(&format!("/runs/{}", fx.runs.completed)).await;
    assert_eq!(html.matches("<script").count(), 1);
}

/// Values an attacker would put in a filter.
const HOSTILE: [&str; 8] = [
    "' OR 1=1 --",
    "demo'; DROP TABLE pgflow.runs; --",
    "\" OR \"\"=\"",
    "%27%20OR%201%3D1",
    "1; select pg_sleep(10)",
    "demo\\",
    "$1",
    "</title><script>alert(1)</script>",
];

fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn hostile_filter_values_neither_inject_nor_break_anything() {
    let fx = Fixture::new().await;
    let run = fx.runs.completed;
    let params = [
        ("/api/runs", "flow"),
        ("/api/runs", "status"),
        ("/api/runs", "since"),
        ("/api/runs", "until"),
        ("/api/runs", "after"),
        ("/api/runs", "limit"),
        ("/runs", "flow"),
        ("/runs", "status"),
        ("/runs", "since"),
        ("/runs", "until"),
        ("/runs", "after"),
        ("/runs", "limit"),
    ];
    let run_params = ["step", "status", "task_status", "after", "limit"];
    let mut paths = Vec::new();
    for value in HOSTILE.iter().copied().chain(["\u{0}", "demo\u{0}x"]) {
        for (path, param) in params {
            paths.push((
                format!("{path}?{param}={}", encode(value)),
                param.to_owned(),
                value,
            ));
        }
        for param in run_params {
            paths.push((
                format!("/api/runs/{run}/tasks?{param}={}", encode(value)),
                param.to_owned(),
                value,
            ));
            paths.push((
                format!("/runs/{run}?{param}={}", encode(value)),
                param.to_owned(),
                value,
            ));
        }
    }
    for (path, param, value) in &paths {
        let (status, body) = fx.get(path).await;
        match (param.as_str(), status) {
            // Free-text filters are bound as parameters: nothing matches.
            ("flow" | "step", 200) if path.starts_with("/api/runs?") => {
                let json: Value = serde_json::from_str(&body).unwrap();
                assert!(
                    json["runs"].as_array().unwrap().is_empty(),
                    "{path}: {body}"
                );
            }
            ("flow" | "step", 200) if path.contains("/tasks?") => {
                let json: Value = serde_json::from_str(&body).unwrap();
                assert!(
                    json["tasks"].as_array().unwrap().is_empty(),
                    "{path}: {body}"
                );
            }
            ("flow" | "step", 200) => {}
            // NUL cannot be stored in text: refused as bad input.
            ("flow" | "step", 400) => assert!(value.contains('\u{0}'), "{path}: {body}"),
            // Everything else is validated and refused, naming the field.
            (_, 400) => {
                let field =
                    if *param == "task_status" || (param == "status" && path.contains("/runs/")) {
                        "task_status"
                    } else {
                        param.as_str()
                    };
                assert!(body.contains(field), "{path}: error names {field}: {body}");
                // JSON answers are JSON (never sniffed as HTML); pages escape.
                if !path.starts_with("/api/") {
                    assert!(
                        !body.contains("<script>alert"),
                        "{path}: echoed unescaped: {body}"
                    );
                }
            }
            _ => panic!("{path}: unexpected {status}: {body}"),
        }
    }
    // Nothing was dropped or changed.
    let runs: i64 = sqlx::query_scalar("select count(*) from pgflow.runs")
        .fetch_one(fx.pool())
        .await
        .unwrap();
    assert_eq!(runs, 4);
    assert_eq!(run_status(fx.pool(), fx.runs.started).await, "started");
}

#[tokio::test]
async fn read_only_dashboards_have_no_buttons_and_refuse_actions() {
    let fx = Fixture::new().await;
    let token = fx.csrf_token().await;
    let (_, html) = fx.get(&format!("/runs/{}", fx.runs.started)).await;
    assert!(!html.contains("Cancel run"));
    assert!(!html.contains("/cancel\""));
    let (_, html) = fx.get(&format!("/runs/{}", fx.runs.failed)).await;
    assert!(!html.contains("Retry run"));

    for path in [
        format!("/runs/{}/cancel", fx.runs.started),
        format!("/runs/{}/retry", fx.runs.failed),
        "/flows/demo/start".to_owned(),
    ] {
        let response = fx
            .http
            .post(fx.url(&path))
            .header("x-csrf-token", &token)
            .header("accept", "application/json")
            .form(&[("input", "{}")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("--allow-actions"), "{path}: {body}");
    }
    assert_eq!(run_status(fx.pool(), fx.runs.started).await, "started");
    assert_eq!(run_status(fx.pool(), fx.runs.failed).await, "failed");
    let runs: i64 = sqlx::query_scalar("select count(*) from pgflow.runs")
        .fetch_one(fx.pool())
        .await
        .unwrap();
    assert_eq!(runs, 4);
}

#[tokio::test]
async fn actions_work_with_allow_actions_and_a_csrf_token() {
    let fx = Fixture::with_actions().await;
    let (_, html) = fx.get(&format!("/runs/{}", fx.runs.started)).await;
    assert!(html.contains("Cancel run"));
    let token = csrf_from(&html);

    // A browser form post: the token in the form, a same-origin Origin.
    let response = fx
        .http
        .post(fx.url(&format!("/runs/{}/cancel", fx.runs.started)))
        .header("origin", &fx.base)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(run_status(fx.pool(), fx.runs.started).await, "cancelled");

    // Cancelling it again changes nothing and says why.
    let response = fx
        .http
        .post(fx.url(&format!("/runs/{}/cancel", fx.runs.started)))
        .header("x-csrf-token", &token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("only a started run"));

    // Retry the failed run.
    let response = fx
        .http
        .post(fx.url(&format!("/runs/{}/retry", fx.runs.failed)))
        .header("x-csrf-token", &token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(run_status(fx.pool(), fx.runs.failed).await, "started");

    // Start a run with JSON input.
    let response = fx
        .http
        .post(fx.url("/flows/demo/start"))
        .header("x-csrf-token", &token)
        .header("accept", "application/json")
        .form(&[("input", r#"{"audit": true, "n": 9}"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let id: uuid::Uuid = body["run_id"].as_str().unwrap().parse().unwrap();
    let input: Value = sqlx::query_scalar("select input from pgflow.runs where run_id = $1")
        .bind(id)
        .fetch_one(fx.pool())
        .await
        .unwrap();
    assert_eq!(input["n"], 9);

    // Bad JSON is refused and starts nothing.
    let response = fx
        .http
        .post(fx.url("/flows/demo/start"))
        .header("x-csrf-token", &token)
        .header("accept", "application/json")
        .form(&[("input", "{not json")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("input: not valid JSON"));
    let runs: i64 = sqlx::query_scalar("select count(*) from pgflow.runs")
        .fetch_one(fx.pool())
        .await
        .unwrap();
    assert_eq!(runs, 5);
}

#[tokio::test]
async fn posts_without_the_csrf_token_or_from_another_origin_are_refused() {
    let fx = Fixture::with_actions().await;
    let token = fx.csrf_token().await;
    let cancel = fx.url(&format!("/runs/{}/cancel", fx.runs.started));
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("no token", fx.http.post(&cancel)),
        (
            "wrong token",
            fx.http.post(&cancel).header("x-csrf-token", "0123456789"),
        ),
        (
            "wrong form token",
            fx.http.post(&cancel).form(&[("csrf_token", "nope")]),
        ),
        (
            "foreign origin",
            fx.http
                .post(&cancel)
                .header("x-csrf-token", &token)
                .header("origin", "http://evil.example"),
        ),
        (
            "foreign referer",
            fx.http
                .post(&cancel)
                .header("x-csrf-token", &token)
                .header("referer", "http://evil.example/page"),
        ),
        (
            "cross-site fetch",
            fx.http
                .post(&cancel)
                .header("x-csrf-token", &token)
                .header("sec-fetch-site", "cross-site"),
        ),
    ];
    for (what, request) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{what}");
    }
    assert_eq!(run_status(fx.pool(), fx.runs.started).await, "started");
}

#[tokio::test]
async fn a_foreign_host_header_is_refused_on_a_loopback_bind() {
    let fx = Fixture::new().await;
    let response = fx
        .http
        .get(fx.url("/api/runs"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("only answers to localhost"));
    let response = fx
        .http
        .get(fx.url("/api/runs"))
        .header(
            "host",
            format!(
                "localhost:{}",
                fx.dashboard.as_ref().unwrap().local_addr().port()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn with_a_token_everything_needs_it_and_actions_without_it_change_nothing() {
    let secret = "s3cret-token-for-tests";
    let fx = Fixture::with(DashboardConfig {
        allow_actions: true,
        auth_token: Some(secret.into()),
        ..DashboardConfig::default()
    })
    .await;
    let (status, _) = fx.get("/api/runs").await;
    assert_eq!(status, 401);
    let (status, _) = fx.get("/metrics").await;
    assert_eq!(status, 401);
    let response = fx.http.get(fx.url("/runs")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");

    // The login page is public and carries the CSRF token.
    let (status, login) = fx.get("/login").await;
    assert_eq!(status, 200);
    let token = csrf_from(&login);

    // An action without credentials is refused and changes nothing.
    let response = fx
        .http
        .post(fx.url(&format!("/runs/{}/cancel", fx.runs.started)))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(run_status(fx.pool(), fx.runs.started).await, "started");

    // Bearer works for API clients (and Prometheus).
    let response = fx
        .http
        .get(fx.url("/api/runs"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = fx
        .http
        .get(fx.url("/api/runs"))
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // A wrong login is refused; the right one sets a strict, HttpOnly cookie.
    let response = fx
        .http
        .post(fx.url("/login"))
        .form(&[("csrf_token", token.as_str()), ("token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = fx
        .http
        .post(fx.url("/login"))
        .form(&[("csrf_token", token.as_str()), ("token", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains(secret), "the cookie is not the token");
    let session = cookie.split(';').next().unwrap().to_owned();
    let response = fx
        .http
        .get(fx.url("/runs"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // With the cookie and the CSRF token, the action goes through.
    let response = fx
        .http
        .post(fx.url(&format!("/runs/{}/cancel", fx.runs.started)))
        .header("cookie", &session)
        .header("x-csrf-token", &token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(run_status(fx.pool(), fx.runs.started).await, "cancelled");
}

#[tokio::test]
async fn a_public_bind_without_a_token_is_refused_with_a_clear_message() {
    let db = pgflow_tests::TestDb::new().await;
    let options: sqlx::postgres::PgConnectOptions = db.url().parse().unwrap();
    let config = DashboardConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..DashboardConfig::default()
    };
    let err = match Dashboard::start(options.clone(), config.clone()).await {
        Err(err) => err,
        Ok(_) => panic!("a public bind without a token must be refused"),
    };
    assert!(matches!(err, StartError::Config(_)));
    let message = err.to_string();
    assert!(
        message.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{message}"
    );
    assert!(message.contains("--auth-token"), "{message}");
    // With a token it starts.
    let dashboard = Dashboard::start(
        options,
        DashboardConfig {
            auth_token: Some("a long enough token".into()),
            ..config
        },
    )
    .await
    .expect("starts with a token");
    dashboard.shutdown().await;
}
