//! The CLI's end-to-end tests, in one test binary (one link of the dependencies, not one per file).
//! nextest runs every test in its own process.

mod common;

mod cli_bench;
mod cli_dashboard;
mod cli_demo;
mod cli_first_hour;
mod cli_flows;
mod cli_handlers;
mod cli_hostile_input;
mod cli_install;
mod cli_nocode_pipeline;
mod cli_ops;
mod cli_otel;
mod cli_runs;
mod cli_worker_metrics;
mod cli_worker_role;
mod docker_compose;
mod docs_shell;
mod docs_snippets;
mod psql_walkthrough;
