//! The `pgflow` binary; everything lives in the library so tests can call it.

fn main() -> std::process::ExitCode {
    pgflow_cli::main()
}
