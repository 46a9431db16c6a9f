//! The pgflow schema migrations, embedded from `migrations/` at build time.
//!
//! The crate's `migrations` is a symlink to the repository's top-level
//! `migrations/`; `cargo package` follows it, so a published crate carries
//! the files themselves.
//!
//! `migrations/` is generated from `sql/` by `cargo xtask gen-migrations`;
//! files are named `V<n>__<descriptive_name>.sql`. They run through refinery
//! over tokio-postgres (refinery has no sqlx driver).

use refinery::{Runner, Target};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Table where refinery records applied migrations. A pgflow-specific name so
/// that an application using refinery's default table in the same database
/// does not see pgflow's `V1` as its own. Schema-qualified so that a
/// different `search_path` on a later run does not create a second table.
pub const HISTORY_TABLE: &str = "public.pgflow_schema_history";

/// A runner over all embedded migrations, configured the way pgflow applies
/// them: all pending migrations in one transaction, history in
/// [`HISTORY_TABLE`], and refusal to run when the database has migrations this
/// build does not know or whose content differs (refinery's defaults).
pub fn runner() -> Runner {
    let mut runner = embedded::migrations::runner().set_grouped(true);
    runner.set_migration_table_name(HISTORY_TABLE);
    runner
}

/// Like [`runner`], but stops after migration `version` (the `n` of `V<n>`).
pub fn runner_through(version: i32) -> Runner {
    runner().set_target(Target::Version(version))
}

/// Names (`V<n>__<name>`) of the embedded migrations, in order.
pub fn names() -> Vec<String> {
    let runner = embedded::migrations::runner();
    let mut migrations: Vec<_> = runner.get_migrations().iter().collect();
    // By version: refinery's own order is not numeric (V10 is not after V9).
    migrations.sort_by_key(|m| m.version());
    migrations.iter().map(ToString::to_string).collect()
}

/// The version of the newest embedded migration, if any.
pub fn latest_version() -> Option<i32> {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
}

/// The SQL of every embedded migration in order, as `(name, sql)`; e.g. to
/// fingerprint the schema for a test template database.
pub fn sources() -> Vec<(String, String)> {
    let runner = embedded::migrations::runner();
    let mut migrations: Vec<_> = runner.get_migrations().iter().collect();
    migrations.sort_by_key(|m| m.version());
    migrations
        .iter()
        .map(|m| (m.to_string(), m.sql().unwrap_or_default().to_string()))
        .collect()
}
