//! A real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) opens a run page while the run progresses (driven here
//! with SQL), and the step states change on the page without a reload. A
//! screenshot is saved under `target/`.
//!
//! Fails (never skips) when Chromium or chromedriver is missing: install
//! them with `scripts/ensure-deps` as root, or
//! `apt-get install chromium chromium-driver`.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use support::{drive, Fixture, Outcome};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn required(env: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_owned()));
    assert!(
        path.exists(),
        "{} not found (set {env} to use another path): install Debian's chromium and \
         chromium-driver packages, e.g. run scripts/ensure-deps as root or \
         `apt-get install chromium chromium-driver`",
        path.display()
    );
    path
}

/// Where screenshots go: the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = required("CHROMIUM", CHROMIUM);
        let chromedriver = required("CHROMEDRIVER", CHROMEDRIVER);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().unwrap();
        // No network here: without these Chromium floods refused connections.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1100",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client: Some(client),
                        driver,
                        _profile: profile,
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver at {webdriver} gave no session: {last_error}");
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn eval(&self, script: &str) -> Value {
        self.client()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Polls `script` until it returns `true`; panics after 30 s with `what`.
    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let state = self
                    .eval("return JSON.stringify({updates: document.body.dataset.updates, live: document.getElementById('live-indicator').className, nodes: Array.from(document.querySelectorAll('g.node')).map(n => n.getAttribute('class') + ' ' + n.textContent)})")
                    .await;
                panic!("page never showed {what}; page state: {state}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.expect("screenshot");
        let dir = target_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        let _ = self.driver.kill().await;
    }
}

fn node_class(step: &str) -> String {
    format!("document.querySelector('svg.dag g.node[data-step=\"{step}\"]').getAttribute('class')")
}

#[tokio::test]
async fn the_run_page_follows_a_live_run_without_reloading() {
    let browser = Browser::start().await;
    let fx = Fixture::new().await;
    let pool = fx.pool();
    let run = pgflow_db::api::start_flow(pool, "demo", &json!({"source": "browser test"}), None)
        .await
        .unwrap()
        .run_id;
    // fetch completes with 6 elements; the map's 6 tasks are claimed and left running.
    drive(pool, "demo", fx.worker, |task| {
        match task.step_slug.as_str() {
            "fetch" => Outcome::Complete(json!(["ada", "bob", "cyd", "dee", "eve", "fay"])),
            _ => Outcome::Keep,
        }
    })
    .await;

    browser
        .client()
        .goto(&fx.url(&format!("/runs/{run}")))
        .await
        .unwrap();
    browser
        .wait_for(
            "the live connection",
            "return document.getElementById('live-indicator').className === 'live on'",
        )
        .await;
    let loaded_at = browser.eval("return window.pgflowLoadedAt").await;
    assert!(loaded_at.is_number(), "app.js ran: {loaded_at}");
    assert_eq!(
        browser
            .eval(&format!("return {}", node_class("items")))
            .await,
        "node status-started"
    );
    assert_eq!(
        browser
            .eval(&format!("return {}", node_class("report")))
            .await,
        "node status-created"
    );

    // Complete half of the map (its tasks were claimed above and are
    // running): the page shows it without a reload.
    for (index, name) in ["ada", "bob", "cyd"].iter().enumerate() {
        pgflow_db::api::complete_task(
            pool,
            run,
            "items",
            index as i32,
            &json!(format!("hello, {name}")),
        )
        .await
        .unwrap();
    }
    browser
        .wait_for(
            "3 of 6 map tasks done",
            "return document.querySelector('g.node[data-step=\"items\"] text.detail').textContent.startsWith('map · 3/6')",
        )
        .await;
    let mid = browser.screenshot("dashboard-run-page.png").await;

    // Finish the map and the fan-in: the run completes on screen.
    let ids: Vec<(uuid::Uuid, i32)> = sqlx::query_as(
        "select run_id, task_index from pgflow.step_tasks where run_id = $1 and step_slug = 'items' and status = 'started'",
    )
    .bind(run)
    .fetch_all(pool)
    .await
    .unwrap();
    for (run_id, index) in ids {
        pgflow_db::api::complete_task(pool, run_id, "items", index, &json!("hello"))
            .await
            .unwrap();
    }
    drive(pool, "demo", fx.worker, |_| {
        Outcome::Complete(json!({"greeted": 6}))
    })
    .await;
    browser
        .wait_for(
            "the completed run",
            &format!(
                "return {} === 'node status-completed' && document.querySelector('.run-head .facts .badge').textContent === 'completed' \
                 && document.querySelector('#run-progress .pct').textContent === '100%'",
                node_class("report")
            ),
        )
        .await;
    assert_eq!(
        browser
            .eval(&format!("return {}", node_class("items")))
            .await,
        "node status-completed"
    );
    assert_eq!(
        browser
            .eval(&format!("return {}", node_class("audit")))
            .await,
        "node status-skipped"
    );
    // Same page load: the marker set at load is still there, and updates came live.
    assert_eq!(
        browser.eval("return window.pgflowLoadedAt").await,
        loaded_at
    );
    let updates: u32 = browser
        .eval("return document.body.dataset.updates")
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(updates >= 2, "live updates applied: {updates}");
    let end = browser.screenshot("dashboard-run-completed.png").await;
    for path in [mid, end] {
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
    }
    browser.close().await;
}
