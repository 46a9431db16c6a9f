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

/// Names of the schemas a real install creates (and a dry run must not).
async fn installed_objects(db: &TestDb) -> (i64, bool) {
    let schemas: i64 =
        sqlx::query_scalar("select count(*) from pg_namespace where nspname in ('pgflow', 'pgmq')")
            .fetch_one(db.pool())
            .await
            .unwrap();
    let history: bool = sqlx::query_scalar("select to_regclass($1) is not null")
        .bind(pgflow_db::migrations::HISTORY_TABLE)
        .fetch_one(db.pool())
        .await
        .unwrap();
    (schemas, history)
}

#[tokio::test]
async fn dry_run_on_a_fresh_database_lists_every_migration_in_order_and_changes_nothing() {
    let db = TestDb::empty().await;
    let out = pgflow(&["install", "--dry-run", "--database-url", db.url()], None);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("pgmq would be installed"), "{text}");
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    let names = pgflow_db::migrations::names();
    assert!(names.len() >= 6, "{names:?}");
    let positions: Vec<usize> = names
        .iter()
        .map(|name| {
            text.find(&format!("  {name}\n"))
                .unwrap_or_else(|| panic!("{name} not listed:\n{text}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(installed_objects(&db).await, (0, false));

    let out = pgflow(
        &["install", "--dry-run", "--json", "--database-url", db.url()],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["pgmq"].is_null(), "{json}");
    assert_eq!(json["pending_migrations"][0]["version"], 1, "{json}");
    assert_eq!(
        json["pending_migrations"][0]["name"], "pgflow_core",
        "{json}"
    );
    assert_eq!(installed_objects(&db).await, (0, false));
}

#[tokio::test]
async fn dry_run_after_install_has_nothing_pending() {
    let db = TestDb::empty().await;
    let out = pgflow(&["install", "--database-url", db.url()], None);
    assert!(out.status.success(), "{out:?}");
    let out = pgflow(&["install", "--dry-run", "--database-url", db.url()], None);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let latest = pgflow_db::migrations::latest_version().unwrap();
    assert!(
        text.contains(&format!(
            "no migrations pending: schema up to date (V{latest})"
        )),
        "{text}"
    );
    assert!(text.contains("already present (embedded SQL)"), "{text}");
}

#[tokio::test]
async fn dry_run_on_an_older_install_lists_only_the_newer_migrations() {
    let db = TestDb::empty().await;
    pgflow_db::install::install_through(db.url(), 3)
        .await
        .unwrap();
    let applied_before: i64 = sqlx::query_scalar(&format!(
        "select count(*) from {}",
        pgflow_db::migrations::HISTORY_TABLE
    ))
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(applied_before, 3);

    let out = pgflow(
        &["install", "--dry-run", "--json", "--database-url", db.url()],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let versions: Vec<i64> = json["pending_migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    let latest = i64::from(pgflow_db::migrations::latest_version().unwrap());
    assert_eq!(versions, (4..=latest).collect::<Vec<_>>(), "{json}");
    assert_eq!(json["schema_version"], 3, "{json}");

    let text = stdout(&pgflow(
        &["install", "--dry-run", "--database-url", db.url()],
        None,
    ));
    assert!(text.contains("(now V3)"), "{text}");
    assert!(!text.contains("V3__"), "{text}");
    assert!(text.contains("  V4__"), "{text}");
    let applied_after: i64 = sqlx::query_scalar(&format!(
        "select count(*) from {}",
        pgflow_db::migrations::HISTORY_TABLE
    ))
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(applied_after, 3, "a dry run applied something");
}

#[test]
fn dry_run_refuses_options_that_would_change_the_database() {
    let out = pgflow(
        &[
            "install",
            "--dry-run",
            "--create-roles",
            "--database-url",
            "postgres://u@127.0.0.1:1/db",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dry-run"), "{err}");
}
