//! Workers and clients through PgBouncer in transaction pooling mode
//! (`pooler=transaction` in their URL), with a pool far smaller than the
//! number of client connections, so server connections are shared between
//! clients from one transaction to the next. Without a listen URL wake-ups
//! poll; with one they LISTEN on a direct connection.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use pgflow::Client;
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tempfile::TempDir;

use crate::worker_support::WorkerProc;

/// Server connections PgBouncer may open to the test database.
const SERVER_POOL: i64 = 2;

/// A PgBouncer in transaction mode in front of one database; killed on drop.
struct Bouncer {
    child: Child,
    port: u16,
    /// Holds the config file for as long as PgBouncer runs.
    _dir: TempDir,
}

impl Bouncer {
    fn start(db_url: &str) -> Bouncer {
        let url = url::Url::parse(db_url).expect("database URL");
        let db = url.path().trim_start_matches('/').to_string();
        let mut server = format!(
            "host={} port={} dbname={db} user={}",
            url.host_str().expect("host"),
            url.port().unwrap_or(5432),
            url.username()
        );
        if let Some(password) = url.password() {
            server.push_str(&format!(" password={password}"));
        }
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        // PgBouncer refuses to run as root; as root it is started as
        // `postgres` (-u), which must be able to read its config.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n\
                 {db} = {server}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = any\n\
                 pool_mode = transaction\n\
                 default_pool_size = {SERVER_POOL}\n\
                 max_db_connections = {SERVER_POOL}\n\
                 max_client_conn = 500\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&ini, std::fs::Permissions::from_mode(0o644)).unwrap();
        let program = if Path::new("/usr/sbin/pgbouncer").exists() {
            "/usr/sbin/pgbouncer"
        } else {
            "pgbouncer"
        };
        let mut cmd = Command::new(program);
        if nix::unistd::Uid::effective().is_root() {
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}); scripts/ensure-deps installs the pgbouncer package")
            });
        let mut bouncer = Bouncer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || !matches!(bouncer.child.try_wait(), Ok(None)) {
                let _ = bouncer.child.kill();
                let mut log = String::new();
                if let Some(mut err) = bouncer.child.stderr.take() {
                    let _ = err.read_to_string(&mut log);
                }
                panic!("pgbouncer did not start on port {port}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    /// The database URL through the pooler, in pooler mode.
    fn url(&self, db: &TestDb) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?pooler=transaction",
            self.port,
            db.name()
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client pool of `size` connections to PgBouncer, in pooler mode.
async fn pooled(url: &str, size: u32) -> PgPool {
    let options = pgflow::db::pool::connect_options(url).expect("pooler URL");
    assert!(options.pooler);
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.options)
        .await
        .expect("connect through pgbouncer")
}

/// Starts `runs` diamond runs at once, waits for all of them at once, and
/// checks every output (`d = 5 * (n + 1)`).
async fn run_many(client: &Client, runs: i64) {
    let handles = join_all(
        (0..runs).map(|n| async move { client.start_flow("diamond", &json!({ "n": n })).await }),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .expect("start runs through pgbouncer");
    let outputs = tokio::time::timeout(
        Duration::from_secs(180),
        join_all(handles.iter().map(|h| h.wait::<Value>())),
    )
    .await
    .expect("runs finished");
    for (n, out) in outputs.into_iter().enumerate() {
        let out = out.expect("run completed");
        assert_eq!(out["d"], json!(5 * (n as i64 + 1)), "run {n}: {out}");
    }
}

/// Backends of the test database that are `LISTEN`ing on `channel` (their
/// last statement was the LISTEN and they are idle since).
async fn listeners(db: &TestDb, channel: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity \
         where datname = $1 and state = 'idle' and query ilike $2",
    )
    .bind(db.name())
    .bind(format!("listen%{channel}%"))
    .fetch_one(db.pool())
    .await
    .unwrap()
}

/// Asserts the worker log has no protocol trouble a pooler would cause.
fn assert_clean_log(worker: &WorkerProc) {
    let log = worker.log_text();
    for bad in ["prepared statement", "bind message", "portal", "protocol"] {
        assert!(!log.contains(bad), "worker log mentions {bad:?}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_and_client_through_pgbouncer_poll_without_listen_url() {
    let db = TestDb::new().await;
    let bouncer = Bouncer::start(db.url());
    let url = bouncer.url(&db);

    let worker = WorkerProc::spawn(&url, &["--flow", "diamond", "--concurrency", "8"]);
    let log = worker.log_text();
    assert!(
        log.contains("pooler mode and no listen URL: not listening for task notifications"),
        "the worker says it polls:\n{log}"
    );

    let pool = pooled(&url, 8).await;
    let client = Client::new(pool.clone());
    run_many(&client, 60).await;
    // The client alone held more connections to PgBouncer than PgBouncer
    // has to the server, so transactions of different clients shared them.
    assert!(
        pool.size() as i64 > SERVER_POOL,
        "client pool {}",
        pool.size()
    );
    assert_clean_log(&worker);
    // Nothing LISTENs: a LISTEN through the pooler would be silently lost.
    assert_eq!(listeners(&db, "pgflow_tasks").await, 0);
    assert_eq!(listeners(&db, "pgflow_events").await, 0);

    // The installer needs a session of its own and says so.
    let err = pgflow::db::install::install(&url)
        .await
        .expect_err("install through the pooler is refused")
        .to_string();
    assert!(
        err.contains("the installer needs a direct connection"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_listen_url_gives_listen_wakeups_through_pgbouncer() {
    let db = TestDb::new().await;
    let bouncer = Bouncer::start(db.url());
    let url = bouncer.url(&db);

    let worker = WorkerProc::spawn(
        &url,
        &[
            "--flow",
            "diamond",
            "--concurrency",
            "8",
            "--listen-url",
            db.url(),
        ],
    );
    let pool = pooled(&url, 8).await;
    let direct: sqlx::postgres::PgConnectOptions = db.url().parse().unwrap();
    let client = Client::with_listen_options(pool, direct);
    run_many(&client, 40).await;

    assert_clean_log(&worker);
    let log = worker.log_text();
    assert!(!log.contains("not listening"), "{log}");
    // The worker's and the client's listeners hold direct LISTEN sessions
    // (the client's stays open a while after the last wait).
    assert_eq!(listeners(&db, "pgflow_tasks").await, 1);
    assert_eq!(listeners(&db, "pgflow_events").await, 1);
}
