//! `pgflow install` run as a real process.

use std::process::{Command, Output};

use pgflow_tests::TestDb;

fn pgflow(args: &[&str], database_url: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgflow"));
    cmd.args(args).env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("run pgflow")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn install_reports_what_it_did_then_nothing_to_do() {
    let db = TestDb::empty().await;

    let first = pgflow(&["install", "--database-url", db.url()], None);
    assert!(first.status.success(), "{first:?}");
    let text = stdout(&first);
    assert!(text.contains("installed (embedded SQL)"), "{text}");

    // The URL may come from the environment as well.
    let second = pgflow(&["install"], Some(db.url()));
    assert!(second.status.success(), "{second:?}");
    let text = stdout(&second);
    assert!(text.contains("nothing to do"), "{text}");
}

#[tokio::test]
async fn install_json_is_machine_readable() {
    let db = TestDb::empty().await;
    let out = pgflow(&["install", "--json", "--database-url", db.url()], None);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pgmq"]["action"], "installed");
    assert!(json["applied_migrations"].is_array());
}

#[test]
fn missing_database_url_explains_how_to_give_one() {
    let out = pgflow(&["install"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--database-url"), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[test]
fn unreachable_database_fails_without_leaking_the_password() {
    let out = pgflow(
        &[
            "install",
            "--database-url",
            "postgres://u:sekret@127.0.0.1:1/db",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to postgres://u:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(!err.contains("sekret"), "{err}");
}

#[tokio::test]
async fn install_can_create_the_worker_and_reader_roles() {
    let db = TestDb::empty().await;
    let out = pgflow(
        &[
            "install",
            "--create-roles",
            "--json",
            "--database-url",
            db.url(),
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["roles"]["worker"], "pgflow_worker");
    let roles: i64 = sqlx::query_scalar(
        "select count(*) from pg_roles where rolname in ('pgflow_worker', 'pgflow_reader')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(roles, 2);
    let can_start: bool = sqlx::query_scalar(
        "select has_function_privilege('pgflow_worker', 'pgflow.start_tasks(text, bigint[], uuid)', 'execute')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(can_start);
}

#[test]
fn a_password_in_the_query_string_is_masked_too() {
    let out = pgflow(
        &[
            "install",
            "--database-url",
            "postgres://u@127.0.0.1:1/db?password=sekret&sslmode=disable",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("password=***"), "{err}");
    assert!(!err.contains("sekret"), "{err}");
}

#[tokio::test]
async fn install_realtime_turns_on_only_for_an_existing_trusted_realtime_send() {
    let db = TestDb::empty().await;
    // No realtime.send at all.
    let out = pgflow(&["install", "--realtime", "--database-url", db.url()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot enable realtime: no function realtime.send"),
        "{err}"
    );

    // A trusted one (made by the superuser) is accepted, and can be turned off again.
    sqlx::raw_sql(
        "create schema realtime;
         create function realtime.send(jsonb, text, text, boolean) returns void language sql as ''",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let out = pgflow(&["install", "--realtime", "--database-url", db.url()], None);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("events are also broadcast through realtime.send"));
    let on: bool = sqlx::query_scalar("select realtime_send from pgflow.config")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(on);
    let out = pgflow(
        &["install", "--no-realtime", "--database-url", db.url()],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let on: bool = sqlx::query_scalar("select realtime_send from pgflow.config")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(!on);
}
