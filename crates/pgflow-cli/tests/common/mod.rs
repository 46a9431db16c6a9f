//! Helpers for running the real `pgflow` binary in tests.
#![allow(dead_code, unused_imports)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use pgflow_tests::FakeWorker;
use serde_json::Value;

/// A `pgflow` command with `DATABASE_URL` cleared (set it with `db`).
pub fn cmd(args: &[&str], database_url: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgflow"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

/// Runs `pgflow args...` against `url` to the end.
pub fn pgflow(args: &[&str], url: Option<&str>) -> Output {
    cmd(args, url).output().expect("run pgflow")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "pgflow failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts failure and returns stderr.
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "pgflow unexpectedly succeeded\nstdout:\n{}",
        stdout(&out)
    );
    stderr(&out)
}

/// Runs with `--json` and parses stdout.
pub fn json(args: &[&str], url: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = ok(pgflow(&all, Some(url)));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Registers a flow from a JSON definition through `pgflow flow add`.
pub fn add_flow(url: &str, def: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "flow.json", &def.to_string());
    ok(pgflow(&["flow", "add", path.to_str().unwrap()], Some(url)));
    dir
}

/// Waits for `child` up to `limit`, killing it when it takes longer.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "pgflow did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Splits a shell line into words: whitespace separates, '...' and "..."
/// quote; stops at a comment.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Serves `app` on a free loopback port for the rest of the test.
pub async fn serve_app(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The input of the documented word_stats run (examples/flows/word_stats.yaml).
pub const WORD_STATS_INPUT: &str =
    r#"{"title": "t", "text": "a few words to count", "chunk_words": 2}"#;

/// `pgflow --json run start <args> --watch` to the end (at most 2 minutes),
/// from a blocking thread.
pub fn start_and_watch(url: &str, args: &[&str]) -> Output {
    let mut all = vec!["--json", "run", "start"];
    all.extend_from_slice(args);
    all.push("--watch");
    wait_with_limit(
        cmd(&all, Some(url))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(120),
    )
}

/// Sends SIGTERM to `child` (as `docker stop` or a service manager would)
/// and waits up to a minute for it to exit.
pub fn terminate(child: Child) -> Output {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -TERM {}", child.id());
    wait_with_limit(child, Duration::from_secs(60))
}

/// Registers examples/flows/word_stats.yaml.
pub fn add_word_stats(url: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/flows/word_stats.yaml"
    );
    ok(pgflow(&["flow", "add", path], Some(url)));
}
