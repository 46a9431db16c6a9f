//! The pgflow SQL core as seen from Rust.
//!
//! - [`install`]: installs pgmq (as plain SQL, when missing) and applies the
//!   embedded migrations built from `sql/`.
//! - [`migrations`]: the refinery migrations embedded from `migrations/`.
//! - [`api`]: one typed Rust function per SQL function of the `pgflow` schema,
//!   by domain (definition, runs, tasks, workers, maintenance); the only
//!   place the runtime sends SQL from.
//! - [`status`]: the run, step and task statuses as enums.
//! - [`tls`]: `sslmode`/`sslrootcert` for the installer's connection.
//! - [`inspect`]: read queries and maintenance calls for operators (the CLI).
//! - [`dashboard`]: the web dashboard's paginated pages, `/metrics` and its
//!   `LISTEN pgflow_events` connection.

pub mod api;
pub mod dashboard;
pub mod error;
pub mod inspect;
pub mod install;
pub mod migrations;
pub mod pool;
pub mod status;
pub mod tls;

pub use error::DbError;
