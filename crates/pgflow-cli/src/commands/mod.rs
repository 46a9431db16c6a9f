//! One module per subcommand, each with `Args` (clap) and `run`.

pub mod bench;
pub mod demo;
pub mod flow;
pub mod install;
pub mod prune;
pub mod queues;
pub mod run;
pub mod workers;
