//! Fixtures for the SQL behaviour tests: define flows, play a worker through the SQL API
//! (`pgmq.read` + `pgflow.start_tasks`, `complete_task`, `fail_task`) and read state back.
//! The worker itself is `pgflow_tests::FakeWorker`, shared with the CLI tests.
#![allow(dead_code)]

pub mod audit;

pub use pgflow_tests::FakeWorker;
use serde_json::Value;
use sqlx::{FromRow, PgPool, Row};
use uuid::Uuid;

/// One task handed out by `pgflow.start_tasks`.
pub type Task = pgflow_db::api::StepTaskRecord;

/// A database error as a user sees it: SQLSTATE, message, detail.
#[derive(Debug)]
pub struct SqlError {
    pub code: String,
    pub message: String,
    pub detail: String,
    pub constraint: Option<String>,
}

pub fn sql_error(err: sqlx::Error) -> SqlError {
    match err {
        sqlx::Error::Database(db) => {
            let pg = db.downcast_ref::<sqlx::postgres::PgDatabaseError>();
            SqlError {
                code: pg.code().to_string(),
                message: pg.message().to_string(),
                detail: pg.detail().unwrap_or_default().to_string(),
                constraint: pg.constraint().map(str::to_string),
            }
        }
        other => panic!("expected a database error, got {other:?}"),
    }
}

/// Runs a statement that must fail and returns its error.
pub async fn expect_error(pool: &PgPool, sql: &str) -> SqlError {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => panic!("statement should have failed: {sql}"),
        Err(e) => sql_error(e),
    }
}

pub async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"));
}

pub async fn scalar_i64(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
}

pub async fn scalar_json(pool: &PgPool, sql: &str) -> Option<Value> {
    sqlx::query_scalar::<_, Option<Value>>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
}

pub async fn scalar_text(pool: &PgPool, sql: &str) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
}

/// Registers a worker row for `flow` (start_tasks needs one) and returns its id.
pub async fn worker(pool: &PgPool, flow: &str) -> Uuid {
    FakeWorker::register(pool, flow).await.id
}

/// Starts a run and returns its id.
pub async fn start(pool: &PgPool, flow: &str, input: Value) -> Uuid {
    sqlx::query_scalar::<_, Uuid>("select run_id from pgflow.start_flow($1, $2)")
        .bind(flow)
        .bind(input)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("start_flow({flow}) failed: {e}"))
}

/// Reads up to `qty` visible messages of `flow` and starts their tasks, as a worker does.
pub async fn read_and_start(pool: &PgPool, flow: &str, worker_id: Uuid, qty: i32) -> Vec<Task> {
    let worker = FakeWorker {
        id: worker_id,
        flow: flow.to_string(),
    };
    worker.read_and_start(pool, qty).await
}

pub fn task_from_row(r: sqlx::postgres::PgRow) -> Task {
    Task::from_row(&r).expect("a step_task_record row")
}

/// Makes every message of `flow` visible now (skips retry delays in tests).
pub async fn make_visible(pool: &PgPool, flow: &str) {
    exec(
        pool,
        &format!(
            "update pgmq.q_{} set vt = clock_timestamp()",
            flow.to_lowercase()
        ),
    )
    .await;
}

/// `pgflow.complete_task`; returns the task status after the call (None: no such task).
pub async fn complete(
    pool: &PgPool,
    run: Uuid,
    step: &str,
    index: i32,
    output: Value,
) -> Option<String> {
    sqlx::query_scalar::<_, String>("select status from pgflow.complete_task($1, $2, $3, $4)")
        .bind(run)
        .bind(step)
        .bind(index)
        .bind(output)
        .fetch_optional(pool)
        .await
        .unwrap_or_else(|e| panic!("complete_task({step}, {index}) failed: {e}"))
}

/// `pgflow.fail_task`; returns the task status after the call.
pub async fn fail(pool: &PgPool, run: Uuid, step: &str, index: i32, error: &str) -> Option<String> {
    sqlx::query_scalar::<_, String>("select status from pgflow.fail_task($1, $2, $3, $4)")
        .bind(run)
        .bind(step)
        .bind(index)
        .bind(error)
        .fetch_optional(pool)
        .await
        .unwrap_or_else(|e| panic!("fail_task({step}, {index}) failed: {e}"))
}

pub async fn run_status(pool: &PgPool, run: Uuid) -> String {
    sqlx::query_scalar("select status from pgflow.runs where run_id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn run_output(pool: &PgPool, run: Uuid) -> Option<Value> {
    sqlx::query_scalar("select output from pgflow.runs where run_id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn remaining_steps(pool: &PgPool, run: Uuid) -> i32 {
    sqlx::query_scalar("select remaining_steps from pgflow.runs where run_id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// One step_states row, the columns tests look at.
#[derive(Debug, Clone)]
pub struct StepState {
    pub status: String,
    pub remaining_deps: i32,
    pub remaining_tasks: Option<i32>,
    pub initial_tasks: Option<i32>,
    pub output: Option<Value>,
    pub error_message: Option<String>,
    pub skip_reason: Option<String>,
}

pub async fn step_state(pool: &PgPool, run: Uuid, step: &str) -> StepState {
    let r = sqlx::query("select * from pgflow.step_states where run_id = $1 and step_slug = $2")
        .bind(run)
        .bind(step)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("no step state {step}: {e}"));
    StepState {
        status: r.get("status"),
        remaining_deps: r.get("remaining_deps"),
        remaining_tasks: r.get("remaining_tasks"),
        initial_tasks: r.get("initial_tasks"),
        output: r.get("output"),
        error_message: r.get("error_message"),
        skip_reason: r.get("skip_reason"),
    }
}

/// Number of live (unarchived) messages in a flow's queue.
pub async fn live_messages(pool: &PgPool, flow: &str) -> i64 {
    scalar_i64(
        pool,
        &format!("select count(*) from pgmq.q_{}", flow.to_lowercase()),
    )
    .await
}

/// Drives every run of `flow` to the end with `handler` deciding each task's output,
/// reading in batches; returns the number of tasks completed.
pub async fn drive<F>(pool: &PgPool, flow: &str, worker_id: Uuid, mut handler: F) -> usize
where
    F: FnMut(&Task) -> Value,
{
    let mut done = 0;
    loop {
        let tasks = read_and_start(pool, flow, worker_id, 100).await;
        if tasks.is_empty() {
            return done;
        }
        for t in &tasks {
            let out = handler(t);
            complete(pool, t.run_id, &t.step_slug, t.task_index, out).await;
            done += 1;
        }
    }
}
