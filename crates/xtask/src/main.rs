//! `cargo xtask <command>`: repository chores. See the library docs.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Repository chores for pgflow-rs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the next migrations/V<n>__<name>.sql from what changed in sql/.
    GenMigrations {
        /// Descriptive part of the file name (default for V1: pgflow_core).
        #[arg(long)]
        name: Option<String>,
    },
    /// Fail when migrations/ is out of date with sql/.
    CheckMigrations,
    /// Fail when the modules of a crate import each other in a loop.
    CheckModules,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = xtask::workspace_root();
    match cli.command {
        Command::GenMigrations { name } => {
            let outcome = xtask::gen_migrations(&root, name.as_deref())?;
            println!("{outcome}");
        }
        Command::CheckMigrations => {
            xtask::check_migrations(&root)?;
            println!("migrations/ is up to date with sql/");
        }
        Command::CheckModules => {
            let cycles = xtask::module_tree::cycles(&root)?;
            if !cycles.is_empty() {
                anyhow::bail!("import cycles between modules:\n{}", cycles.join("\n"));
            }
            println!("every crate's modules form a tree");
        }
    }
    Ok(())
}
