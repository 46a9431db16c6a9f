//! One typed Rust function per SQL function of the `pgflow` schema (plus the
//! few pgmq and table queries the worker and client need), grouped by what
//! they touch:
//!
//! - [`definition`]: compile a flow's shape (`ensure_flow_compiled`);
//! - [`runs`]: start, read, cancel and retry runs;
//! - [`tasks`]: claim tasks and report their outcomes;
//! - [`workers`]: worker rows and heartbeats;
//! - [`maintenance`]: the stalled-task sweep, role setup and the realtime switch.
//!
//! Everything is re-exported here, so `api::start_flow` works whatever
//! module it lives in.
//!
//! This is the only place the runtime sends SQL from. Each query lives in
//! `crates/pgflow-db/queries/<name>.sql` and is embedded with `include_str!`,
//! so the SQL stays reviewable as SQL; rows map onto their structs with
//! `sqlx::FromRow`. Every function takes any [`sqlx::PgExecutor`] (a pool, a
//! connection or a transaction), so callers choose the transaction
//! boundaries.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), pgflow_db::api::ApiError> {
//! use pgflow_db::api;
//! let run = api::start_flow(&pool, "greet", &serde_json::json!({"name": "Ada"}), None).await?;
//! println!("started run {}", run.run_id);
//! # Ok(()) }
//! ```

/// The body of every call in this crate: sends one query file of
/// `crates/pgflow-db/queries/` with its arguments, fetches with the given
/// method and names the SQL function in errors ([`OrApi`]).
///
/// `call!(<kind> "<file>.sql", "<function>", <fetch>(<executor>), <args>...)`,
/// with `rows` (`sqlx::query_as`: `FromRow` structs or tuples), `scalar`
/// (`sqlx::query_scalar`) or `query` (`sqlx::query`, e.g. with `execute`).
///
/// In pooler mode ([`crate::pool`]) the same query goes out as one simple
/// query with its arguments rendered as literals ([`simple`]).
macro_rules! call {
    ($kind:ident $file:literal, $function:expr, $fetch:ident($ex:expr) $(, $arg:expr)* $(,)?) => {
        if $crate::pool::pooler_mode() {
            let sql = $crate::api::simple::render(
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/", $file)),
                &[$(&$arg as &dyn $crate::api::simple::Literal),*],
            );
            $crate::api::simple::$kind::$fetch($ex, &sql).await.or_api($function)
        } else {
            $crate::api::call!(@ $kind, concat!(env!("CARGO_MANIFEST_DIR"), "/queries/", $file))
                $(.bind($arg))*
                .$fetch($ex)
                .await
                .or_api($function)
        }
    };
    (@ rows, $path:expr) => { sqlx::query_as(include_str!($path)) };
    (@ scalar, $path:expr) => { sqlx::query_scalar(include_str!($path)) };
    (@ query, $path:expr) => { sqlx::query(include_str!($path)) };
}
pub(crate) use call;

pub mod definition;
mod error;
pub mod handlers;
pub mod maintenance;
pub mod runs;
pub mod simple;
pub mod tasks;
pub mod workers;

pub(crate) use error::OrApi;

pub use crate::status::{RunStatus, StepStatus, TaskStatus, UnknownStatus};
pub use definition::{
    apply_flow_options, ensure_flow_compiled, CompileOutcome, CompileStatus, OptionChange,
};
pub use error::ApiError;
pub use handlers::{
    flows_with_handlers, get_flow_shape, postpone_task_retry, record_task_usage, set_step_handler,
    step_handlers, step_usage, task_attempt, FlowWithHandlers, StepUsage, UsageRecord,
    MAX_POSTPONE_SECS,
};
pub use maintenance::{
    requeue_stalled_tasks, set_realtime_send, setup_roles, sweep_requeue_stalled,
};
pub use runs::{
    cancel_run, failed_steps, get_run, get_run_with_states, retry_run, run_input, start_flow,
    RunRow, RunState, RunWithStates, StepState,
};
pub use tasks::{
    claim_tasks, complete_task, complete_tasks, fail_task, read_with_poll, start_tasks,
    start_worker_tasks, ClaimedTask, Completion, QueueMessage, StepTaskRecord, TaskRow,
};
pub use workers::{heartbeat, mark_worker_stopped, register_worker, set_worker_dead_after};
