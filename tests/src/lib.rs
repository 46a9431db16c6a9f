//! Test harness: every test gets a database of its own, so tests run in
//! parallel without seeing each other's flows and queues.
//!
//! The server is the one at `PGFLOW_TEST_ADMIN_URL` (a superuser URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`; `scripts/test` sets it). When
//! unset, the first test of the process starts a throwaway cluster with
//! [`pgflow_pgtemp::TempCluster`] and every test of that process shares it.
//!
//! Installed databases are cheap: pgmq and the migrations are installed once
//! into a template database named after a hash of the migrations, and each
//! [`TestDb::new`] is a `CREATE DATABASE ... TEMPLATE` copy of it.
//!
//! Hand-written rather than `#[sqlx::test]`: sqlx's fixture applies sqlx
//! migrations, while a pgflow database is pgmq (installed from the `pgmq`
//! crate's SQL) plus refinery migrations, exactly as `pgflow install` does;
//! the template is built by that same installer.
//!
//! ```no_run
//! # async fn demo() {
//! let db = pgflow_tests::TestDb::new().await;
//! let one: i32 = sqlx::query_scalar("select 1").fetch_one(db.pool()).await.unwrap();
//! # }
//! ```
//!
//! Set `PGFLOW_TEST_KEEP_DB=1` to keep the databases after the tests, for
//! poking at them with psql.
//!
//! Every test crate uses the same fixtures from here: [`TestDb`] for the
//! database, [`FakeWorker`] to play a worker through the SQL API.

mod fake_worker;

pub use fake_worker::FakeWorker;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pgflow_pgtemp::TempCluster;
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio_postgres::{Client, NoTls};

/// Environment variable naming the admin URL of the test server.
pub const ADMIN_URL_ENV: &str = "PGFLOW_TEST_ADMIN_URL";

/// Environment variable that, when set to anything but `0`, keeps test databases.
pub const KEEP_DB_ENV: &str = "PGFLOW_TEST_KEEP_DB";

/// Advisory lock key (on the admin database) serialising template builds
/// across test processes. ASCII "pgflow" plus a tag.
const TEMPLATE_LOCK_KEY: i64 = 0x7067_666c_6f77_0002;

/// Connections per test pool; the server allows 400 in total.
const POOL_SIZE: u32 = 5;

/// Why the harness could not provide a database.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Starting the throwaway cluster failed.
    #[error("starting a throwaway PostgreSQL cluster: {0}")]
    Cluster(#[from] pgflow_pgtemp::PgTempError),
    /// An admin statement failed.
    #[error("admin query on the test server failed: {0}")]
    Admin(#[from] tokio_postgres::Error),
    /// Connecting the test pool failed.
    #[error("connecting to the test database: {0}")]
    Pool(#[from] sqlx::Error),
    /// Installing into the template failed.
    #[error("installing pgflow into the template database: {0}")]
    Install(#[from] pgflow_db::DbError),
    /// The admin URL is not a URL.
    #[error("{ADMIN_URL_ENV} is not a valid URL: {0}")]
    BadAdminUrl(#[from] url::ParseError),
}

/// Where the harness's own cluster lives when `PGFLOW_TEST_ADMIN_URL` is unset.
static CLUSTER: OnceLock<Result<TempCluster, String>> = OnceLock::new();

/// Name of the installed template, once it is known to exist.
static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// The superuser URL of the test server, starting a cluster if needed.
pub fn admin_url() -> Result<String, HarnessError> {
    if let Ok(url) = std::env::var(ADMIN_URL_ENV) {
        if !url.is_empty() {
            return Ok(url);
        }
    }
    let cluster = CLUSTER.get_or_init(|| {
        let cluster = TempCluster::start().map_err(|e| e.to_string())?;
        // Statics are never dropped; without this the server would outlive us.
        cluster
            .stop_when_process_exits()
            .map_err(|e| e.to_string())?;
        Ok(cluster)
    });
    match cluster {
        Ok(cluster) => Ok(cluster.admin_url()),
        Err(err) => Err(HarnessError::Cluster(pgflow_pgtemp::PgTempError::Io {
            context: err.clone(),
            source: std::io::Error::other("cluster start failed earlier in this process"),
        })),
    }
}

/// The throwaway cluster this process started, if it started one (i.e. when
/// `PGFLOW_TEST_ADMIN_URL` is unset); lets tests stop and restart Postgres.
pub fn own_cluster() -> Option<&'static TempCluster> {
    CLUSTER.get().and_then(|c| c.as_ref().ok())
}

/// `admin_url` with its database name replaced by `dbname`.
pub fn url_for(admin_url: &str, dbname: &str) -> Result<String, HarnessError> {
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{dbname}"));
    Ok(url.to_string())
}

/// A database of one's own on the test server; dropped (best effort) on Drop.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
    pool: PgPool,
}

impl TestDb {
    /// A fresh database with pgmq and every pgflow migration installed.
    ///
    /// # Panics
    /// When the server cannot be reached or the install fails; this is for
    /// tests, where a panic with the cause is the most useful outcome.
    pub async fn new() -> Self {
        Self::try_new().await.expect("TestDb::new")
    }

    /// A fresh database with nothing installed, for testing the installer.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn empty() -> Self {
        Self::try_empty().await.expect("TestDb::empty")
    }

    /// Fallible [`TestDb::new`].
    pub async fn try_new() -> Result<Self, HarnessError> {
        let admin_url = admin_url()?;
        let template = TEMPLATE
            .get_or_try_init(|| ensure_template(&admin_url))
            .await?
            .clone();
        Self::create(admin_url, &template).await
    }

    /// Fallible [`TestDb::empty`].
    pub async fn try_empty() -> Result<Self, HarnessError> {
        // template0 is guaranteed pristine; template1 may have been customised.
        Self::create(admin_url()?, "template0").await
    }

    async fn create(admin_url: String, template: &str) -> Result<Self, HarnessError> {
        let name = format!("pgflow_test_{:016x}", rand::thread_rng().gen::<u64>());
        let admin = connect(&admin_url).await?;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(&name),
                quote_ident(template)
            ))
            .await?;
        let url = url_for(&admin_url, &name)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await?;
        Ok(Self {
            name,
            url,
            admin_url,
            pool,
        })
    }

    /// Connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A small sqlx pool connected to this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The superuser URL of the server this database lives on.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var(KEEP_DB_ENV).is_ok_and(|v| v != "0") {
            eprintln!("keeping test database {}", self.url);
            return;
        }
        let admin_url = self.admin_url.clone();
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        // Drop cannot await, and the test's runtime may be single-threaded
        // (and busy dropping us), so use a short-lived runtime of our own.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = connect(&admin_url).await.ok()?;
                admin.batch_execute(&sql).await.ok()
            })
        });
        let _ = dropper.join();
    }
}

/// Creates (once per server and migration set) the installed template database
/// and returns its name.
async fn ensure_template(admin_url: &str) -> Result<String, HarnessError> {
    let name = template_name();
    let admin = connect(admin_url).await?;
    // Session lock: held across the CREATE DATABASE and the install, which
    // run outside any transaction.
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await?;
    let result = build_template(&admin, admin_url, &name).await;
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await?;
    result.map(|()| name)
}

async fn build_template(admin: &Client, admin_url: &str, name: &str) -> Result<(), HarnessError> {
    let ready: Option<bool> = admin
        .query_opt(
            "SELECT datistemplate FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await?
        .map(|row| row.get(0));
    match ready {
        // Marked as template only after a complete install, so this is good.
        Some(true) => return Ok(()),
        // A build that died half-way; start over.
        Some(false) => {
            admin
                .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", quote_ident(name)))
                .await?
        }
        None => {}
    }
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            quote_ident(name)
        ))
        .await?;
    pgflow_db::install::install(&url_for(admin_url, name)?).await?;
    wait_until_unused(admin, name).await?;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            quote_ident(name)
        ))
        .await?;
    Ok(())
}

/// `CREATE DATABASE ... TEMPLATE` fails while anyone is connected to the
/// template, and backends of the installer linger briefly after it
/// disconnects.
async fn wait_until_unused(admin: &Client, dbname: &str) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&dbname],
            )
            .await?
            .get(0);
        if sessions == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    &[&dbname],
                )
                .await?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `pgflow_tpl_<hash>`: a new migration set (or pgmq crate) gets a new
/// template instead of reusing a stale one on a long-lived server.
fn template_name() -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"pgmq-0.33.7\n");
    for (name, sql) in pgflow_db::migrations::sources() {
        hasher.update(name.as_bytes());
        hasher.update(b"\n");
        hasher.update(sql.as_bytes());
    }
    let digest = format!("{:x}", hasher.finalize());
    format!("pgflow_tpl_{}", &digest[..16])
}

async fn connect(url: &str) -> Result<Client, HarnessError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Quotes an SQL identifier (database names cannot be bind parameters).
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}
