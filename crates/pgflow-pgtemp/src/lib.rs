//! A throwaway PostgreSQL cluster started from the system's binaries.
//!
//! [`TempCluster::start`] runs `initdb` in a fresh temporary directory, picks a
//! free TCP port on `127.0.0.1` and starts `postgres` with settings that trade
//! durability for speed (no fsync, no synchronous commit). Dropping the value
//! stops the server and deletes the directory.
//!
//! PostgreSQL refuses to run as root, so when the current user is root the
//! directory is handed to the `postgres` user and every server command runs
//! through `runuser -u postgres --`.
//!
//! ```no_run
//! # fn main() -> Result<(), pgflow_pgtemp::PgTempError> {
//! let cluster = pgflow_pgtemp::TempCluster::start()?;
//! println!("connect to {}", cluster.url("postgres"));
//! cluster.restart_fast()?; // e.g. to test reconnect logic
//! # Ok(())
//! # }
//! ```

use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Uid, User};
use tempfile::TempDir;

/// The superuser created by `initdb`; URLs connect as this role.
pub const SUPERUSER: &str = "postgres";

/// OS account the server runs under when the current user is root.
const SERVICE_ACCOUNT: &str = "postgres";

/// How many times [`TempCluster::start_with`] retries with a new port when the
/// one it picked was taken in the meantime by someone else.
const PORT_ATTEMPTS: usize = 3;

/// Everything that can go wrong while managing a temporary cluster.
#[derive(Debug, thiserror::Error)]
pub enum PgTempError {
    /// No directory with `initdb`, `pg_ctl` and `postgres` was found.
    #[error(
        "PostgreSQL binaries not found: no PGFLOW_PG_BIN, no pg_ctl on PATH, no \
         `pg_config --bindir`, nothing under /usr/lib/postgresql/*/bin (install the \
         `postgresql` package)"
    )]
    BinariesNotFound,
    /// Running as root but the `postgres` OS account does not exist.
    #[error("running as root, but there is no `{0}` OS user to run the server as")]
    NoServiceAccount(&'static str),
    /// A filesystem or process-spawn error.
    #[error("{context}: {source}")]
    Io {
        /// What was being attempted.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Changing ownership of the cluster directory failed.
    #[error("cannot hand {path} to the `{SERVICE_ACCOUNT}` user: {source}")]
    Chown {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A server command exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The command line, for the reader.
        command: String,
        /// Exit status as text.
        status: String,
        /// Its stdout and stderr, plus the server log tail when relevant.
        output: String,
    },
    /// The server started but did not accept TCP connections in time.
    #[error("PostgreSQL did not accept connections on port {port} within {timeout:?}\n{log}")]
    NotReady {
        /// The port that was polled.
        port: u16,
        /// How long we waited.
        timeout: Duration,
        /// Tail of the server log.
        log: String,
    },
}

impl PgTempError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Tuning for [`TempCluster::start_with`]. The defaults suit a test suite.
#[derive(Debug, Clone)]
pub struct TempClusterOptions {
    /// Port to listen on; `None` picks a free one.
    pub port: Option<u16>,
    /// Extra `postgresql.conf` settings; they override the defaults below.
    pub settings: Vec<(String, String)>,
    /// Files written into the data directory before the server starts
    /// (name, contents), readable by the server only: e.g. `server.key`
    /// and `server.crt` for `ssl = on` (the server refuses a key others
    /// can read).
    pub data_files: Vec<(String, Vec<u8>)>,
    /// Replaces `pg_hba.conf` when set, e.g. to accept only TLS
    /// connections (`hostssl`).
    pub hba: Option<String>,
    /// How long to wait for the server to accept connections.
    pub start_timeout: Duration,
}

impl Default for TempClusterOptions {
    fn default() -> Self {
        Self {
            port: None,
            settings: Vec::new(),
            data_files: Vec::new(),
            hba: None,
            start_timeout: Duration::from_secs(60),
        }
    }
}

/// Settings that make a cluster fast and able to serve many parallel tests;
/// a crash may lose data, which is fine for a throwaway cluster.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "400"),
    ("shared_buffers", "64MB"),
    ("listen_addresses", "'127.0.0.1'"),
    // Tests start and drop many databases; keep checkpoints from piling up.
    ("checkpoint_timeout", "30min"),
    ("max_wal_size", "1GB"),
    ("log_min_messages", "warning"),
    ("log_min_error_statement", "panic"),
];

/// A running (or stopped) throwaway PostgreSQL cluster. See the crate docs.
#[derive(Debug)]
pub struct TempCluster {
    // Dropped last (field order) so the server is stopped before removal.
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    /// The superuser's password. TCP connections need it (scram-sha-256), so
    /// other local users cannot walk into the cluster, which may outlive the
    /// process (`pgflow demo --keep`); the socket directory is private.
    password: Password,
    as_service_account: bool,
    start_timeout: Duration,
    dir: Option<TempDir>,
}

impl TempCluster {
    /// Creates and starts a cluster with the default options.
    pub fn start() -> Result<Self, PgTempError> {
        Self::start_with(TempClusterOptions::default())
    }

    /// Creates and starts a cluster with the given options.
    pub fn start_with(options: TempClusterOptions) -> Result<Self, PgTempError> {
        let bin_dir = find_bin_dir()?;
        let as_service_account = Uid::effective().is_root();

        let dir = tempfile::Builder::new()
            .prefix("pgflow-pgtemp-")
            .tempdir()
            .map_err(PgTempError::io("creating the cluster's temp dir"))?;
        let data_dir = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        let log_file = dir.path().join("postgres.log");
        fs::create_dir(&socket_dir).map_err(PgTempError::io("creating the socket dir"))?;
        if as_service_account {
            hand_to_service_account(dir.path())?;
            hand_to_service_account(&socket_dir)?;
        }

        let mut cluster = Self {
            bin_dir,
            data_dir,
            socket_dir,
            log_file,
            port: 0,
            password: Password(random_password()?),
            as_service_account,
            start_timeout: options.start_timeout,
            dir: Some(dir),
        };
        cluster.initdb()?;
        cluster.write_config(&options.settings)?;
        cluster.write_data_files(&options)?;

        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            cluster.port = match options.port {
                Some(port) => port,
                None => free_port()?,
            };
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                // A fixed port will not get free by retrying.
                Err(err) if options.port.is_some() => return Err(err),
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.expect("PORT_ATTEMPTS > 0"))
    }

    /// Connection URL for `dbname` as the superuser, over TCP, with the
    /// cluster's random password.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{dbname}",
            self.password.0, self.port
        )
    }

    /// Connection URL of the `postgres` maintenance database.
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// The TCP port; stays the same across [`stop_fast`](Self::stop_fast) and
    /// [`start`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding `pg_ctl`, `initdb`, `postgres`, `psql`, ...
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Path of the server log.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Stops the server with `pg_ctl stop -m fast`: open connections are
    /// terminated, which is what a worker sees when its database goes away.
    pub fn stop_fast(&self) -> Result<(), PgTempError> {
        self.pg_ctl_stop("fast")
    }

    /// Starts a stopped server again on the same port and data.
    pub fn start_again(&self) -> Result<(), PgTempError> {
        self.start_server()
    }

    /// [`stop_fast`](Self::stop_fast) then [`start_again`](Self::start_again).
    pub fn restart_fast(&self) -> Result<(), PgTempError> {
        self.stop_fast()?;
        self.start_again()
    }

    /// Makes sure the cluster goes away even if `self` is never dropped, e.g.
    /// when it lives in a `static` of a test binary: a detached watchdog shell
    /// waits for this process to exit, then stops the server and deletes the
    /// directory. Harmless if the cluster was dropped normally.
    pub fn stop_when_process_exits(&self) -> Result<(), PgTempError> {
        let mut stop: Vec<OsString> = Vec::new();
        if self.as_service_account {
            stop.extend(["runuser", "-u", SERVICE_ACCOUNT, "--"].map(OsString::from));
        }
        stop.push(self.bin_dir.join("pg_ctl").into_os_string());
        stop.extend(["stop", "-m", "immediate", "-D"].map(OsString::from));
        stop.push(self.data_dir.clone().into_os_string());
        Command::new("sh")
            .arg("-c")
            .arg(
                r#"pid=$1; dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
"$@"; rm -rf "$dir""#,
            )
            .arg("pgflow-pgtemp-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.dir_path())
            .args(stop)
            // Inherited pipes would make test runners wait for the watchdog,
            // and a shared process group would let them kill it too early.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(PgTempError::io("spawning the cleanup watchdog"))?;
        Ok(())
    }

    /// Whether the server currently accepts TCP connections.
    pub fn is_accepting(&self) -> bool {
        tcp_accepts(self.port)
    }

    fn initdb(&self) -> Result<(), PgTempError> {
        // The password reaches initdb through a file, never its command line.
        let pwfile = self.dir_path().join("pwfile");
        fs::write(&pwfile, &self.password.0)
            .map_err(PgTempError::io("writing the password file"))?;
        if self.as_service_account {
            hand_to_service_account(&pwfile)?;
        }
        let mut args: Vec<OsString> = vec![
            "-D".into(),
            self.data_dir.clone().into_os_string(),
            "--pwfile".into(),
            pwfile.clone().into_os_string(),
        ];
        for arg in [
            "-U",
            SUPERUSER,
            // Local (socket) connections stay password-free for the cluster's
            // owner; the socket directory is private to it.
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            // The C locale exists everywhere, unlike the caller's LANG.
            "--locale=C",
            // Skipping the final fsync saves seconds per cluster.
            "--no-sync",
        ] {
            args.push(arg.into());
        }
        let result = self.run("initdb", &args).map(drop);
        let _ = fs::remove_file(&pwfile);
        result
    }

    fn write_data_files(&self, options: &TempClusterOptions) -> Result<(), PgTempError> {
        use std::os::unix::fs::PermissionsExt;
        let hba = options
            .hba
            .as_ref()
            .map(|h| ("pg_hba.conf".to_string(), h.clone().into_bytes()));
        for (name, contents) in options.data_files.iter().cloned().chain(hba) {
            let path = self.data_dir.join(&name);
            fs::write(&path, contents).map_err(PgTempError::io(format!("writing {name}")))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(PgTempError::io(format!("setting the mode of {name}")))?;
            if self.as_service_account {
                hand_to_service_account(&path)?;
            }
        }
        Ok(())
    }

    fn write_config(&self, extra: &[(String, String)]) -> Result<(), PgTempError> {
        let mut conf = String::from("\n# Added by pgflow-pgtemp.\n");
        for (name, value) in DEFAULT_SETTINGS {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        conf.push_str(&format!(
            "unix_socket_directories = '{}'\n",
            self.socket_dir.display()
        ));
        // Later lines win in postgresql.conf, so the caller's settings override.
        for (name, value) in extra {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        let path = self.data_dir.join("postgresql.conf");
        let mut content =
            fs::read_to_string(&path).map_err(PgTempError::io("reading postgresql.conf"))?;
        content.push_str(&conf);
        fs::write(&path, content).map_err(PgTempError::io("writing postgresql.conf"))
    }

    fn start_server(&self) -> Result<(), PgTempError> {
        let args: Vec<OsString> = vec![
            "start".into(),
            "-D".into(),
            self.data_dir.clone().into_os_string(),
            "-l".into(),
            self.log_file.clone().into_os_string(),
            // The port goes on the command line so it survives restarts without
            // editing the config, and a retry with a new port is just a new call.
            "-o".into(),
            format!("-p {}", self.port).into(),
            "-w".into(),
            "-t".into(),
            self.start_timeout.as_secs().max(1).to_string().into(),
        ];
        if let Err(err) = self.run("pg_ctl", &args) {
            return Err(self.with_log(err));
        }
        // pg_ctl -w only checks the socket; tests connect over TCP.
        let deadline = Instant::now() + self.start_timeout;
        while !tcp_accepts(self.port) {
            if Instant::now() > deadline {
                return Err(PgTempError::NotReady {
                    port: self.port,
                    timeout: self.start_timeout,
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), PgTempError> {
        let args: Vec<OsString> = vec![
            "stop".into(),
            "-D".into(),
            self.data_dir.clone().into_os_string(),
            "-m".into(),
            mode.into(),
            "-w".into(),
        ];
        self.run("pg_ctl", &args).map(drop)
    }

    fn is_running(&self) -> bool {
        self.data_dir.join("postmaster.pid").exists()
    }

    /// Runs one of the server's binaries, as the service account if needed.
    fn run(&self, program: &str, args: &[OsString]) -> Result<Output, PgTempError> {
        let program_path = self.bin_dir.join(program);
        let mut command = if self.as_service_account {
            let mut c = Command::new("runuser");
            c.args(["-u", SERVICE_ACCOUNT, "--"]).arg(&program_path);
            c
        } else {
            Command::new(&program_path)
        };
        command
            .args(args)
            // The service account may not be allowed into the caller's cwd.
            .current_dir(self.dir_path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        let line = format!(
            "{} {}",
            program_path.display(),
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        tracing::debug!(command = %line, "pgtemp");
        let output = command
            .output()
            .map_err(PgTempError::io(format!("running {line}")))?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(PgTempError::CommandFailed {
                command: line,
                status: output.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            })
        }
    }

    fn dir_path(&self) -> &Path {
        self.dir
            .as_ref()
            .map(TempDir::path)
            .expect("dir is only taken in Drop")
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(20);
        format!("server log tail:\n{}", lines[start..].join("\n"))
    }

    fn with_log(&self, err: PgTempError) -> PgTempError {
        match err {
            PgTempError::CommandFailed {
                command,
                status,
                output,
            } => PgTempError::CommandFailed {
                command,
                status,
                output: format!("{output}\n{}", self.log_tail()),
            },
            other => other,
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if self.is_running() {
            // Immediate: nothing in a throwaway cluster is worth a checkpoint.
            if let Err(err) = self.pg_ctl_stop("immediate") {
                tracing::warn!(%err, "could not stop the temporary PostgreSQL cluster");
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(err) = dir.close() {
                tracing::warn!(%err, path = %path.display(), "could not remove the cluster dir");
            }
        }
    }
}

/// Environment variable naming the PostgreSQL bin directory to use.
pub const PG_BIN_ENV: &str = "PGFLOW_PG_BIN";

/// Finds the directory of the PostgreSQL server binaries (`pg_ctl`,
/// `initdb`, `postgres`), in order: `$PGFLOW_PG_BIN`, the real directory of
/// each `pg_ctl` on `PATH`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/<major>/bin`. The same rule as `scripts/lib/pg-bin.sh`,
/// which the scripts use before anything is built (a test keeps them equal).
pub fn find_bin_dir() -> Result<PathBuf, PgTempError> {
    find_bin_dir_with(std::env::var_os(PG_BIN_ENV), std::env::var_os("PATH"))
}

/// [`find_bin_dir`] with the two environment variables it reads given
/// explicitly (`pg_config` is still looked up on the given `PATH`).
pub fn find_bin_dir_with(
    pg_bin: Option<OsString>,
    path: Option<OsString>,
) -> Result<PathBuf, PgTempError> {
    let has_server = |dir: &Path| {
        ["pg_ctl", "initdb", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };

    if let Some(dir) = pg_bin.filter(|d| !d.is_empty()).map(PathBuf::from) {
        if has_server(&dir) {
            return Ok(dir);
        }
    }

    let path_dirs: Vec<PathBuf> = path
        .as_deref()
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    for dir in &path_dirs {
        let candidate = dir.join("pg_ctl");
        if !candidate.is_file() {
            continue;
        }
        // Debian links only some tools into /usr/bin; the real dir has them all.
        if let Some(real_dir) = fs::canonicalize(&candidate)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            if has_server(&real_dir) {
                return Ok(real_dir);
            }
        }
    }

    let pg_config = path_dirs
        .iter()
        .map(|d| d.join("pg_config"))
        .find(|p| p.is_file());
    if let Some(Ok(out)) = pg_config.map(|p| Command::new(p).arg("--bindir").output()) {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }

    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(PgTempError::BinariesNotFound)
}

fn hand_to_service_account(path: &Path) -> Result<(), PgTempError> {
    let user = User::from_name(SERVICE_ACCOUNT)
        .ok()
        .flatten()
        .ok_or(PgTempError::NoServiceAccount(SERVICE_ACCOUNT))?;
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).map_err(
        |source| PgTempError::Chown {
            path: path.to_path_buf(),
            source,
        },
    )
}

/// The superuser's password; `Debug` shows `***`, so debug logs of a
/// [`TempCluster`] do not leak it.
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// 32 hex digits from the kernel's random source.
fn random_password() -> Result<String, PgTempError> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(PgTempError::io(
            "reading /dev/urandom for the cluster password",
        ))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Asks the kernel for a free port. Another process may take it before the
/// server binds it; callers retry with a new port.
fn free_port() -> Result<u16, PgTempError> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(PgTempError::io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(PgTempError::io("finding a free port"))?
        .port();
    Ok(port)
}

fn tcp_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .is_ok()
}
