//! Flows the run tests share.

use pgflow_tests::{FakeWorker, TestDb};
use uuid::Uuid;

use crate::common::{exec, Task};

/// `diamond`: `a` feeds `b` and `c`, which both feed `d`.
pub async fn diamond(pool: &sqlx::PgPool) {
    exec(
        pool,
        "select pgflow.create_flow('diamond');
         select pgflow.add_step('diamond', 'a');
         select pgflow.add_step('diamond', 'b', array['a']);
         select pgflow.add_step('diamond', 'c', array['a']);
         select pgflow.add_step('diamond', 'd', array['b', 'c']);",
    )
    .await;
}

/// A fresh database where `definitions` (SQL: `create_flow`, `add_step`)
/// has run, with a worker registered for `flow`.
pub async fn with_flow(flow: &str, definitions: &str) -> (TestDb, Uuid) {
    let db = TestDb::new().await;
    exec(db.pool(), definitions).await;
    let worker = FakeWorker::register(db.pool(), flow).await;
    (db, worker.id)
}

/// `pgflow.claim_tasks(flow, worker, claim_id, qty)`.
pub async fn claim(
    pool: &sqlx::PgPool,
    flow: &str,
    worker: Uuid,
    claim_id: Uuid,
    qty: i32,
) -> Vec<Task> {
    sqlx::query_as(
        "select flow_slug, run_id, step_slug, coalesce(input, 'null'::jsonb) as input,
                msg_id, task_index, flow_input
           from pgflow.claim_tasks($1, $2, $3, $4)",
    )
    .bind(flow)
    .bind(worker)
    .bind(claim_id)
    .bind(qty)
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("claim_tasks({flow}) failed: {e}"))
}
