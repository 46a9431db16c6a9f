//! Shared by the dashboard's tests: a database with runs in every state, a
//! dashboard serving it on 127.0.0.1:0, an HTTP client, and a "worker"
//! played with SQL calls (claim, complete, fail) so tests decide every step.
#![allow(dead_code)]

use std::str::FromStr;
use std::time::Duration;

use pgflow_dashboard::{Dashboard, DashboardConfig};
use pgflow_db::api;
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;

/// The `<script>` a step output carries, to prove it is shown escaped.
pub const HOSTILE_OUTPUT: &str = "<script>alert('pwned')</script>";
/// The error of the failed run (markup, to prove escaping).
pub const HOSTILE_ERROR: &str = "boom: <b>upstream</b> said no";

/// The flow every test uses: a root step, a root step with an unmet
/// condition (skipped), a map over the first step's output, and a fan-in.
pub const FLOW_SQL: &str = r#"
select pgflow.create_flow('demo', max_attempts => 1);
select pgflow.add_step('demo', 'fetch');
select pgflow.add_step('demo', 'audit', required_input_pattern => '{"audit": true}', when_unmet => 'skip');
select pgflow.add_step('demo', 'items', array['fetch'], step_type => 'map');
select pgflow.add_step('demo', 'report', array['items']);
"#;

/// Runs the fixture made, one per state.
#[derive(Debug, Clone, Copy)]
pub struct Runs {
    /// Completed: fetch -> 3 items (one output is a `<script>`) -> report; audit skipped.
    pub completed: Uuid,
    /// Failed: fetch failed for good.
    pub failed: Uuid,
    /// Cancelled right after start.
    pub cancelled: Uuid,
    /// Still going: fetch done, the map's 2 tasks claimed and running.
    pub started: Uuid,
}

/// A database with the demo flow and its runs, and a dashboard on it.
pub struct Fixture {
    /// The database (dropped last).
    pub db: TestDb,
    /// The running dashboard.
    pub dashboard: Option<Dashboard>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    /// The runs.
    pub runs: Runs,
    /// The worker the SQL "worker" claims as.
    pub worker: Uuid,
}

impl Fixture {
    /// A fixture whose dashboard uses `config` (its address is replaced by 127.0.0.1:0).
    pub async fn with(config: DashboardConfig) -> Fixture {
        let db = TestDb::new().await;
        let (runs, worker) = seed(db.pool()).await;
        let dashboard = start(&db, config).await;
        let base = format!("http://{}", dashboard.local_addr());
        Fixture {
            db,
            dashboard: Some(dashboard),
            base,
            http: client(),
            runs,
            worker,
        }
    }

    /// A read-only fixture.
    pub async fn new() -> Fixture {
        Self::with(DashboardConfig::default()).await
    }

    /// A fixture with actions allowed.
    pub async fn with_actions() -> Fixture {
        Self::with(DashboardConfig {
            allow_actions: true,
            ..DashboardConfig::default()
        })
        .await
    }

    /// The pool of the test database.
    pub fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path`; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// GETs `path` and parses the JSON body; panics unless 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// The CSRF token the pages carry.
    pub async fn csrf_token(&self) -> String {
        let (_, html) = self.get("/runs").await;
        csrf_from(&html)
    }

    /// Stops the dashboard.
    pub async fn stop(&mut self) {
        if let Some(dashboard) = self.dashboard.take() {
            dashboard.shutdown().await;
        }
    }
}

/// Pulls the token out of `<meta name="csrf-token" content="...">`.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf-token\" content=\"";
    let start = html.find(marker).expect("csrf meta tag") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// An HTTP client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Starts a dashboard on `db` at 127.0.0.1:0 (or `config.listen` when its port is set).
pub async fn start(db: &TestDb, mut config: DashboardConfig) -> Dashboard {
    if config.listen.port() == 8080 {
        config.listen = "127.0.0.1:0".parse().unwrap();
    }
    let options = PgConnectOptions::from_str(db.url()).expect("url");
    let dashboard = Dashboard::start(options, config)
        .await
        .expect("dashboard starts");
    // Live tests need the LISTEN connection up before they make events.
    wait_until("the dashboard listens", || async {
        dashboard.state().events.is_listening()
    })
    .await;
    dashboard
}

/// Polls `check` every 20 ms until it holds; panics after 30 s naming `what`.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the SQL worker does with a claimed task.
pub enum Outcome {
    /// Report this output.
    Complete(Value),
    /// Report this error.
    Fail(String),
    /// Leave it started.
    Keep,
}

/// Claims every visible task of `flow` and handles each with `decide`,
/// until no task is left to claim; returns how many were claimed.
pub async fn drive(
    pool: &PgPool,
    flow: &str,
    worker: Uuid,
    mut decide: impl FnMut(&api::StepTaskRecord) -> Outcome,
) -> usize {
    let mut claimed = 0;
    loop {
        let tasks = api::claim_tasks(pool, flow, worker, Uuid::new_v4(), 100, 60)
            .await
            .expect("claim_tasks");
        if tasks.is_empty() {
            return claimed;
        }
        claimed += tasks.len();
        for task in &tasks {
            match decide(&task.task) {
                Outcome::Complete(output) => {
                    api::complete_task(
                        pool,
                        task.run_id,
                        &task.step_slug,
                        task.task_index,
                        &output,
                    )
                    .await
                    .expect("complete_task");
                }
                Outcome::Fail(message) => {
                    api::fail_task(
                        pool,
                        task.run_id,
                        &task.step_slug,
                        task.task_index,
                        &message,
                    )
                    .await
                    .expect("fail_task");
                }
                Outcome::Keep => {}
            }
        }
    }
}

/// Completes tasks the way the demo flow expects.
pub fn happy(task: &api::StepTaskRecord) -> Outcome {
    match task.step_slug.as_str() {
        "fetch" => Outcome::Complete(json!([HOSTILE_OUTPUT, "b", "c"])),
        "items" => Outcome::Complete(task.input.clone()),
        _ => Outcome::Complete(json!({"count": 3})),
    }
}

/// Registers a worker for the demo flow.
pub async fn register(pool: &PgPool, queue: &str) -> Uuid {
    let worker = Uuid::new_v4();
    api::register_worker(pool, queue, worker, "dashboard-tests")
        .await
        .expect("register_worker");
    worker
}

/// Creates the demo flow and a run in every state (one at a time, so each
/// claim sees only that run's tasks).
pub async fn seed(pool: &PgPool) -> (Runs, Uuid) {
    sqlx::raw_sql(FLOW_SQL)
        .execute(pool)
        .await
        .expect("create the demo flow");
    let worker = register(pool, "demo").await;

    let completed = api::start_flow(pool, "demo", &json!({"n": 1}), None)
        .await
        .unwrap()
        .run_id;
    drive(pool, "demo", worker, happy).await;

    let failed = api::start_flow(pool, "demo", &json!({"n": 2}), None)
        .await
        .unwrap()
        .run_id;
    drive(pool, "demo", worker, |_| {
        Outcome::Fail(HOSTILE_ERROR.into())
    })
    .await;

    let cancelled = api::start_flow(pool, "demo", &json!({"n": 3}), None)
        .await
        .unwrap()
        .run_id;
    assert!(api::cancel_run(pool, cancelled).await.unwrap());

    let started = api::start_flow(pool, "demo", &json!({"n": 4}), None)
        .await
        .unwrap()
        .run_id;
    drive(pool, "demo", worker, |task| match task.step_slug.as_str() {
        "fetch" => Outcome::Complete(json!(["x", "y"])),
        // Both map tasks are claimed and left running.
        _ => Outcome::Keep,
    })
    .await;
    (
        Runs {
            completed,
            failed,
            cancelled,
            started,
        },
        worker,
    )
}

/// Status of a run, from the database.
pub async fn run_status(pool: &PgPool, run: Uuid) -> String {
    sqlx::query_scalar("select status from pgflow.runs where run_id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}
