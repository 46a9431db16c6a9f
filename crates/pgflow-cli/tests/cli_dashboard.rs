//! `pgflow dashboard` as users run it: refuses a public address without a
//! token, serves a database on a loopback address, stops on SIGTERM.
#![cfg(feature = "dashboard")]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{cmd, fails, pgflow};

#[test]
fn a_public_address_without_a_token_is_refused_before_connecting() {
    // No database is given: the refusal comes first, with what to do.
    let err = fails(pgflow(&["dashboard", "--listen", "0.0.0.0:8080"], None));
    assert!(
        err.contains("refusing to listen on 0.0.0.0:8080 without authentication"),
        "{err}"
    );
    assert!(err.contains("--auth-token"), "{err}");
    assert!(err.contains("PGFLOW_DASHBOARD_TOKEN"), "{err}");
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test]
async fn serves_a_database_and_stops_on_sigterm() {
    let db = pgflow_tests::TestDb::new().await;
    let mut child = cmd(&["dashboard", "--listen", "127.0.0.1:0"], Some(db.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pgflow dashboard");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(line.contains("read-only"), "{line}");
    let response = get(&addr, "/api/runs");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"runs\":[]"), "{response}");
    let response = get(&addr, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status}");
}
