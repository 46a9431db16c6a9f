//! Every integration test of the SQL core, the worker and the client, in one test binary:
//! one binary links the dependencies once (dozens of binaries filled CI's disk).
//! Each module below was a test binary of its own; nextest still runs every test in its own process.

mod common;
mod model_support;
mod reliability_support;
mod worker_support;

mod client_waits;
mod install;
mod model_based;
mod pgtap;
mod pooler;
mod reliability_chaos;
mod reliability_connections;
mod reliability_recovery;
mod sql_api_signatures;
mod sql_conditions;
mod sql_definition;
mod sql_events;
mod sql_extensions;
mod sql_flow_options;
mod sql_hostile_input;
mod sql_privileges;
mod sql_races;
mod sql_runs;
mod sql_security;
mod sql_shapes;
mod sql_stale_reports;
mod tls;
mod upgrade;
mod worker_builtin;
mod worker_flows;
mod worker_lifecycle;
mod worker_resilience;
mod worker_settings;
