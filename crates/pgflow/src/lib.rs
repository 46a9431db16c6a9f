//! pgflow: a Postgres-native workflow (DAG) coordinator.
//!
//! This facade crate is what applications depend on:
//! - flow definitions ([`FlowBuilder`], [`StepDef`], from `pgflow-core`);
//! - workers that run step handlers ([`Worker`], [`WorkerFlow`], from
//!   `pgflow-worker`);
//! - a [`Client`] to start runs, wait for them and inspect them.
//!
//! ```no_run
//! use pgflow::{Client, CompileMode, StepDef, Worker, WorkerConfig, WorkerFlow};
//! use serde_json::json;
//!
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! let flow = WorkerFlow::builder("shout")
//!     .step(StepDef::single("upper"), |s: String, _ctx| async move {
//!         Ok::<_, std::convert::Infallible>(s.to_uppercase())
//!     })
//!     .build()?;
//! let config = WorkerConfig { compile_mode: CompileMode::Development, ..Default::default() };
//! let worker = Worker::new(pool.clone(), config).flow(flow).start().await?;
//!
//! let run = Client::new(pool).start_flow("shout", &"hi").await?;
//! let out: serde_json::Value = run.wait().await?;
//! assert_eq!(out, json!({"upper": "HI"}));
//! worker.shutdown().await?;
//! # Ok(()) }
//! ```

mod client;
mod events;

pub use client::{Client, ClientError, FailedStep, RunHandle, MAX_POOL_TIMEOUTS};
pub use pgflow_core::{
    is_valid_slug, Flow, FlowBuilder, FlowDef, FlowError, FlowOptions, FlowShape, StepDef,
    StepOptions, StepType, WhenMode,
};
pub use pgflow_db::api::{RunRow, RunState, RunWithStates, StepState};
pub use pgflow_db::status::{RunStatus, StepStatus, TaskStatus};
pub use pgflow_worker::{
    shutdown_signal, BuiltinHandler, CompileMode, HandlerFailure, LoadFlowError, Resources,
    RunningWorker, TaskContext, Usage, Worker, WorkerConfig, WorkerError, WorkerFlow,
    WorkerFlowBuilder,
};

/// The definition crate.
pub use pgflow_core as core;
/// The database crate (installer, migrations, typed SQL calls).
pub use pgflow_db as db;
/// The worker crate.
pub use pgflow_worker as worker;
/// The sqlx this crate is built with: use it (or the same version) for the
/// pool you hand to [`Worker`] and [`Client`], so the types match.
pub use sqlx;

/// Opens a connection pool to `url` (`postgres://user:password@host/db`) of
/// at most 10 connections, enough for a worker and a client in one process.
/// `?pooler=transaction` in the URL turns on pooler mode for PgBouncer in
/// transaction mode (see [`pgflow_db::pool`]). For other settings build a
/// [`sqlx::postgres::PgPoolOptions`] yourself, with the options of
/// [`pgflow_db::pool::connect_options`].
pub async fn connect(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    let options = pgflow_db::pool::connect_options(url)
        .map_err(|e| sqlx::Error::Configuration(Box::new(e)))?
        .options;
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await
}
