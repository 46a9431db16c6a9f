//! Every shell line of README.md and docs/ that a user types against a database
//! runs here, in order, as written: `pgflow ...` and `psql ...` lines, in bash,
//! with `DATABASE_URL` set to a fresh database, the built `pgflow` first on
//! PATH, from a directory holding a copy of the repository's `examples/` (its
//! LLM base URL pointed at the fake endpoint this test starts). Placeholders
//! are filled in as a reader would: `<run_id>` is the newest run,
//! `https://...` the local article server, `=...` a value.
//!
//! Long-running commands (`pgflow worker`, `pgflow dashboard`, a `psql` that
//! listens) run in the background: a dashboard must answer on its port, the
//! others must still be running at the end of their block, and stop cleanly
//! on SIGTERM.
//!
//! Lines that build or test the project itself (`scripts/...`, `cargo ...`)
//! are run by CI in another form, listed in [`RUN_ELSEWHERE`] with where; any
//! other line fails this test, so a new snippet is run or consciously listed.

use crate::cli_nocode_pipeline::{serve, Llm};
use crate::common;
use crate::docs_snippets::{blocks, drop_roles, roles_created_in};

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use pgflow_tests::TestDb;

/// Command prefixes this test does not run, and where CI runs them instead.
const RUN_ELSEWHERE: &[(&str, &str)] = &[
    ("scripts/test", ".ci/run is exactly this command"),
    (
        "scripts/demo",
        "builds the CLI and runs `pgflow demo`, which docs/cli.md's block runs here",
    ),
    (
        "cargo run -p pgflow --example document_pipeline",
        "scripts/test runs every example against a fresh database",
    ),
    (
        "cargo run",
        "the own-project program is examples/own_project.rs (crates/pgflow/tests/readme.rs \
         checks it is the README's), run by scripts/test",
    ),
    (
        "cargo install --locked --path crates/pgflow-cli",
        "a release build of the binary this test runs",
    ),
    (
        "cargo nextest run -p pgflow-tests",
        "the model-based test's long mode; scripts/test runs it at CI size",
    ),
];

/// The words of a line after its leading `VAR=value` assignments.
fn command_words(line: &str) -> Vec<String> {
    shell_words(line)
        .into_iter()
        .skip_while(|w| w.contains('=') && !w.starts_with('-'))
        .collect()
}

/// Copies `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `bash -c line` from `dir` with the database and the built `pgflow`.
fn bash(line: &str, dir: &Path, url: &str) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_pgflow")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PATH", path)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Stops a background command with SIGTERM; it must have been running and
/// must exit cleanly (psql, killed by the signal, is only required to stop).
fn stop(line: &str, mut child: Child) {
    if let Some(status) = child.try_wait().unwrap() {
        let out = child.wait_with_output().unwrap();
        panic!(
            "`{line}` exited early ({status}):\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = wait_with_limit(child, Duration::from_secs(60));
    if line.contains("pgflow ") {
        assert!(
            out.status.success(),
            "`{line}` on SIGTERM: {}",
            stderr(&out)
        );
    }
}

/// Waits until a dashboard started by `line` accepts connections.
fn wait_for_port(line: &str, child: &mut Child) {
    let words = command_words(line);
    let listen = words
        .iter()
        .position(|w| w == "--listen")
        .map_or("127.0.0.1:8080".to_string(), |i| words[i + 1].clone());
    let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("`{line}` exited ({status}) before listening on {port}");
        }
        assert!(
            Instant::now() < deadline,
            "`{line}` never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until a worker started by `line` has registered (the workers of
/// earlier blocks stopped cleanly, so any live row is this one's).
async fn wait_for_worker(pool: &sqlx::PgPool, line: &str, child: &mut Child) {
    // Drained by a thread: the pipe stays open (a closed one would make the
    // worker's next message fail) and its text explains an early exit.
    let mut stderr = child.stderr.take().unwrap();
    let collected = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut collected = Some(collected);
    let mut exited = |status| -> ! {
        let text = collected
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        panic!("`{line}` exited ({status}) before registering:\n{text}")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let live: i64 =
            sqlx::query_scalar("select count(*) from pgflow.workers where stopped_at is null")
                .fetch_one(pool)
                .await
                .unwrap();
        if live > 0 {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            exited(status);
        }
        assert!(Instant::now() < deadline, "`{line}` never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shell_line_runs() {
    let db = TestDb::empty().await;
    let fake = serve(Arc::new(Mutex::new(Llm::default()))).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    copy_dir(&repo.join("examples"), &dir.path().join("examples"));
    let digest = dir.path().join("examples/flows/article_digest.yaml");
    let text = std::fs::read_to_string(&digest).unwrap();
    std::fs::write(
        &digest,
        text.replace("http://127.0.0.1:8089", &format!("http://{fake}")),
    )
    .unwrap();

    // Roles belong to the cluster: drop the login roles the lines create,
    // before (a previous run's) and after.
    let roles = roles_created_in("sh");
    drop_roles(db.pool(), &roles).await;
    let mut ran = 0;
    for (file, lang, text) in blocks() {
        if lang != "sh" {
            continue;
        }
        let mut background = Vec::new();
        for line in text.replace("\\\n", " ").lines() {
            let words = command_words(line);
            // Comment-only lines, and synopses with [optional] parts.
            if words.is_empty() || words.iter().any(|w| w.starts_with('[')) {
                continue;
            }
            if words[0] != "pgflow" && words[0] != "psql" {
                let command = words.join(" ");
                assert!(
                    RUN_ELSEWHERE.iter().any(|(p, _)| command.starts_with(p)),
                    "{file}: `{line}` is neither run by this test nor listed in RUN_ELSEWHERE"
                );
                continue;
            }
            let newest: Option<uuid::Uuid> = sqlx::query_scalar(
                "select run_id from pgflow.runs order by started_at desc limit 1",
            )
            .fetch_optional(db.pool())
            .await
            .unwrap_or(None);
            let filled = line
                .replace("<run_id>", &newest.unwrap_or_default().to_string())
                .replace("https://...", &format!("http://{fake}/articles/42"))
                .replace("=...", "=test-key");
            let sub = words.get(1).map(String::as_str);
            let long_running = (words[0] == "pgflow"
                && matches!(sub, Some("worker" | "dashboard")))
                || filled.contains("listen ");
            if long_running {
                // `exec env`: the signal reaches the command, not the shell.
                let mut child = bash(&format!("exec env {filled}"), dir.path(), db.url())
                    .spawn()
                    .unwrap();
                if sub == Some("dashboard") {
                    wait_for_port(&filled, &mut child);
                    stop(&filled, child);
                } else {
                    if sub == Some("worker") {
                        wait_for_worker(db.pool(), &filled, &mut child).await;
                    }
                    background.push((filled, child));
                }
            } else {
                let out = tokio::task::block_in_place(|| {
                    wait_with_limit(
                        bash(&filled, dir.path(), db.url()).spawn().unwrap(),
                        Duration::from_secs(180),
                    )
                });
                assert!(
                    out.status.success(),
                    "{file}: `{filled}` failed ({}):\n{}{}",
                    out.status,
                    stdout(&out),
                    stderr(&out)
                );
            }
            ran += 1;
        }
        for (line, child) in background {
            tokio::task::block_in_place(|| stop(&line, child));
        }
    }
    assert!(ran >= 8, "only {ran} shell lines found");
    drop_roles(db.pool(), &roles).await;

    // The README's no-code pipeline ran to the end on the fake servers.
    let status: String = sqlx::query_scalar(
        "select status from pgflow.runs where flow_slug = 'article_digest' order by started_at desc limit 1",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(status, "completed");
}
