//! A TCP proxy between workers and PostgreSQL that cuts connections.
//!
//! Two kinds of cuts, decided per connection and per statement:
//! - **random**: some connections get a byte budget; once the server has sent
//!   that many bytes through them the connection is cut, wherever that falls
//!   (mid-message, mid-result, between statements).
//! - **targeted**: when a client binds a statement whose SQL mentions
//!   `complete_task` (which also matches `complete_tasks`), the proxy may
//!   decide to lose that statement's reply: it withholds every server message
//!   until the `ReadyForQuery` that follows (sent after the implicit
//!   transaction committed), then cuts the connection without forwarding any
//!   of it. The client sees a dropped connection for a call that did commit.
//!   The same can be done to claims (`start_tasks`, `start_worker_tasks` and `claim_tasks` calls).
//!
//! It follows the wire protocol only as far as needed: message framing in
//! both directions, `Parse`/`Bind`/`Query` from the client, `ReadyForQuery`
//! from the server. Clients must connect with `sslmode=disable` (no
//! `SSLRequest` preamble).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How often to cut.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Chance that a new connection gets a random byte budget.
    pub random_cut_chance: f64,
    /// The budget is uniform in this range (server-to-client bytes).
    pub random_cut_bytes: (u64, u64),
    /// Chance that a `complete_task` call's reply is lost after its commit.
    pub targeted_cut_chance: f64,
    /// Chance that a claim's (`start_tasks` or `claim_tasks` call's) reply is lost after
    /// its commit.
    pub claim_cut_chance: f64,
}

/// Counters, for the test's report and assertions.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicU64,
    pub random_cuts: AtomicU64,
    pub targeted_cuts: AtomicU64,
    pub claim_cuts: AtomicU64,
    pub complete_task_calls: AtomicU64,
}

/// A running proxy (faults off until [`FaultProxy::set_faults`]); stops
/// accepting when dropped (open connections end
/// when their peers close them).
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub stats: Arc<ProxyStats>,
    faults_on: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (any port) and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, plan: FaultPlan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(ProxyStats::default());
        let faults_on = Arc::new(AtomicBool::new(false));
        let (s, f) = (stats.clone(), faults_on.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                s.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(client, server, plan, s.clone(), f.clone()));
            }
        });
        FaultProxy {
            addr,
            stats,
            faults_on,
            accept,
        }
    }

    /// Starts or stops injecting faults (connections are always proxied;
    /// faults start off, so workers can start cleanly).
    pub fn set_faults(&self, on: bool) {
        self.faults_on.store(on, Ordering::SeqCst);
    }

    /// `url` (a postgres URL) pointed at the proxy, without TLS.
    pub fn url_for(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.query_pairs_mut().append_pair("sslmode", "disable");
        u.to_string()
    }

    pub fn random_cuts(&self) -> u64 {
        self.stats.random_cuts.load(Ordering::Relaxed)
    }

    pub fn targeted_cuts(&self) -> u64 {
        self.stats.targeted_cuts.load(Ordering::Relaxed)
    }

    pub fn claim_cuts(&self) -> u64 {
        self.stats.claim_cuts.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Per-connection state shared by the two directions.
struct Conn {
    /// Prepared statement names whose SQL mentions complete_task.
    complete_stmts: Mutex<HashSet<String>>,
    /// Prepared statement names whose SQL is a claim (see [`is_claim`]).
    claim_stmts: Mutex<HashSet<String>>,
    /// Set when the reply to the statement just bound must be lost.
    lose_next_reply: AtomicBool,
    /// Whether that statement is a claim (else a completion).
    lost_is_claim: AtomicBool,
    /// Set when either direction has cut the connection.
    cut: AtomicBool,
}

async fn serve(
    client: TcpStream,
    server: TcpStream,
    plan: FaultPlan,
    stats: Arc<ProxyStats>,
    faults_on: Arc<AtomicBool>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let conn = Arc::new(Conn {
        complete_stmts: Mutex::new(HashSet::new()),
        claim_stmts: Mutex::new(HashSet::new()),
        lose_next_reply: AtomicBool::new(false),
        lost_is_claim: AtomicBool::new(false),
        cut: AtomicBool::new(false),
    });
    let budget = {
        let mut rng = rand::thread_rng();
        (rng.gen_bool(plan.random_cut_chance))
            .then(|| rng.gen_range(plan.random_cut_bytes.0..=plan.random_cut_bytes.1))
    };
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = tokio::spawn(client_to_server(
        client_r,
        server_w,
        conn.clone(),
        plan,
        stats.clone(),
        faults_on.clone(),
    ));
    let down = server_to_client(server_r, client_w, conn.clone(), budget, stats, faults_on);
    down.await;
    // Whatever ended the downstream direction ends the connection: dropping
    // the upstream task's halves closes the server side too.
    up.abort();
    let _ = up.await;
}

/// Reads one length-prefixed message body after its type byte; None on EOF.
async fn read_message(r: &mut OwnedReadHalf, with_type: bool) -> Option<(u8, Vec<u8>)> {
    let tag = if with_type {
        r.read_u8().await.ok()?
    } else {
        0
    };
    let len = r.read_u32().await.ok()? as usize;
    if len < 4 {
        return None;
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await.ok()?;
    Some((tag, body))
}

fn frame(tag: u8, body: &[u8], with_type: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    if with_type {
        out.push(tag);
    }
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Whether a statement's SQL claims tasks.
fn is_claim(sql: &str) -> bool {
    sql.contains("pgflow.start_tasks(")
        || sql.contains("pgflow.start_worker_tasks(")
        || sql.contains("pgflow.claim_tasks(")
}

/// The NUL-terminated strings at the start of `body`.
fn cstrings(body: &[u8], n: usize) -> Vec<String> {
    body.split(|b| *b == 0)
        .take(n)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

async fn client_to_server(
    mut r: OwnedReadHalf,
    mut w: OwnedWriteHalf,
    conn: Arc<Conn>,
    plan: FaultPlan,
    stats: Arc<ProxyStats>,
    faults_on: Arc<AtomicBool>,
) {
    // The startup message has no type byte.
    let mut typed = false;
    while let Some((tag, body)) = read_message(&mut r, typed).await {
        if typed {
            // (is a completion, is a claim) for the statement being run.
            let target = match tag {
                b'P' => {
                    let parts = cstrings(&body, 2);
                    if parts.len() == 2 && parts[1].contains("pgflow.complete_task") {
                        conn.complete_stmts.lock().unwrap().insert(parts[0].clone());
                    }
                    if parts.len() == 2 && is_claim(&parts[1]) {
                        conn.claim_stmts.lock().unwrap().insert(parts[0].clone());
                    }
                    (false, false)
                }
                b'B' => {
                    let parts = cstrings(&body, 2);
                    if parts.len() == 2 {
                        (
                            conn.complete_stmts.lock().unwrap().contains(&parts[1]),
                            conn.claim_stmts.lock().unwrap().contains(&parts[1]),
                        )
                    } else {
                        (false, false)
                    }
                }
                b'Q' => {
                    let sql = String::from_utf8_lossy(&body);
                    (sql.contains("pgflow.complete_task"), is_claim(&sql))
                }
                _ => (false, false),
            };
            let chance = match target {
                (true, _) => {
                    stats.complete_task_calls.fetch_add(1, Ordering::Relaxed);
                    plan.targeted_cut_chance
                }
                (false, true) => plan.claim_cut_chance,
                _ => 0.0,
            };
            if chance > 0.0
                && faults_on.load(Ordering::SeqCst)
                && rand::thread_rng().gen_bool(chance)
            {
                conn.lost_is_claim.store(!target.0, Ordering::SeqCst);
                conn.lose_next_reply.store(true, Ordering::SeqCst);
            }
        }
        if conn.cut.load(Ordering::SeqCst) || w.write_all(&frame(tag, &body, typed)).await.is_err()
        {
            return;
        }
        typed = true;
    }
}

async fn server_to_client(
    mut r: OwnedReadHalf,
    mut w: OwnedWriteHalf,
    conn: Arc<Conn>,
    mut budget: Option<u64>,
    stats: Arc<ProxyStats>,
    faults_on: Arc<AtomicBool>,
) {
    while let Some((tag, body)) = read_message(&mut r, true).await {
        if conn.lose_next_reply.load(Ordering::SeqCst) {
            // Withhold the whole reply; the ReadyForQuery at its end means
            // the statement's implicit transaction has committed.
            if tag == b'Z' {
                if conn.lost_is_claim.load(Ordering::SeqCst) {
                    stats.claim_cuts.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.targeted_cuts.fetch_add(1, Ordering::Relaxed);
                }
                conn.cut.store(true, Ordering::SeqCst);
                return;
            }
            continue;
        }
        let bytes = frame(tag, &body, true);
        if let Some(left) = budget.as_mut() {
            if faults_on.load(Ordering::SeqCst) && (bytes.len() as u64) >= *left {
                // Forward a prefix (possibly mid-message), then cut.
                let _ = w.write_all(&bytes[..*left as usize]).await;
                stats.random_cuts.fetch_add(1, Ordering::Relaxed);
                conn.cut.store(true, Ordering::SeqCst);
                return;
            }
            *left = left.saturating_sub(bytes.len() as u64);
        }
        if w.write_all(&bytes).await.is_err() {
            return;
        }
    }
}
