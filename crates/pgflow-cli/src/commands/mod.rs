//! One module per subcommand, each with `Args` (clap) and `run`.

pub mod install;

/// Options shared by every command that talks to the database.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://user:pass@host:5432/db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The URL, or an error telling the user how to give one.
    pub fn url(&self) -> anyhow::Result<&str> {
        self.database_url.as_deref().ok_or_else(|| {
            anyhow::anyhow!("no database given: pass --database-url URL or set DATABASE_URL")
        })
    }
}
