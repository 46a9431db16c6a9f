//! One module per subcommand, each with `Args` (clap) and `run`.

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "dashboard")]
pub mod dashboard;
#[cfg(feature = "demo")]
pub mod demo;
pub mod flow;
pub mod install;
pub mod prune;
pub mod queues;
pub mod run;
pub mod worker;
pub mod workers;
