//! [`FakeWorker`]: a test playing a worker through the SQL API, the same
//! way in every test crate (the SQL behaviour tests and the CLI tests).

use std::time::Duration;

use pgflow_db::api::{self, StepTaskRecord};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Acts as a worker from a test: a registered `pgflow.workers` row (which
/// `start_tasks` needs) that reads its flow's queue and claims, completes
/// or fails tasks.
#[derive(Debug, Clone)]
pub struct FakeWorker {
    /// The worker id.
    pub id: Uuid,
    /// The flow (= queue) it serves.
    pub flow: String,
}

impl FakeWorker {
    /// Registers a new worker row for `flow` (function name `tests`).
    pub async fn register(pool: &PgPool, flow: &str) -> Self {
        let id = Uuid::new_v4();
        api::register_worker(pool, flow, id, "tests")
            .await
            .unwrap_or_else(|e| panic!("register_worker({flow}) failed: {e}"));
        FakeWorker {
            id,
            flow: flow.to_string(),
        }
    }

    /// Reads up to `qty` visible messages (hiding them for 5 s) and starts
    /// their tasks, in one statement, without waiting.
    pub async fn read_and_start(&self, pool: &PgPool, qty: i32) -> Vec<StepTaskRecord> {
        sqlx::query_as(
            "select flow_slug, run_id, step_slug, coalesce(input, 'null'::jsonb) as input,
                    msg_id, task_index, flow_input
               from pgflow.start_tasks($1,
                 (select coalesce(array_agg(msg_id), '{}') from pgflow.read_with_poll($1, 5, $2, 0)), $3)",
        )
        .bind(&self.flow)
        .bind(qty)
        .bind(self.id)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("read_and_start({}) failed: {e}", self.flow))
    }

    /// Reads and starts the next task, waiting up to 2 s for its message.
    pub async fn next(&self, pool: &PgPool) -> StepTaskRecord {
        let wait = Duration::from_secs(2);
        let msgs = api::read_with_poll(pool, &self.flow, 30, 1, wait.as_secs() as i32, 50)
            .await
            .unwrap();
        let ids: Vec<i64> = msgs.iter().map(|m| m.msg_id).collect();
        assert_eq!(ids.len(), 1, "expected one message on {}", self.flow);
        let mut tasks = api::start_tasks(pool, &self.flow, &ids, self.id)
            .await
            .unwrap();
        assert_eq!(tasks.len(), 1);
        tasks.remove(0)
    }

    /// Runs the next task and completes it with `output`; returns its step.
    pub async fn complete_next(&self, pool: &PgPool, output: Value) -> String {
        let task = self.next(pool).await;
        api::complete_task(pool, task.run_id, &task.step_slug, task.task_index, &output)
            .await
            .unwrap();
        task.step_slug
    }

    /// Runs the next task and fails it with `error`; returns its step.
    pub async fn fail_next(&self, pool: &PgPool, error: &str) -> String {
        let task = self.next(pool).await;
        api::fail_task(pool, task.run_id, &task.step_slug, task.task_index, error)
            .await
            .unwrap();
        task.step_slug
    }
}
