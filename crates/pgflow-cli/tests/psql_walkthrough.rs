//! The SQL core on its own: `pgflow install` into an empty database, then a diamond flow
//! and a 1,000-element map flow defined, run and completed with nothing but `psql` and the
//! SQL API (the scripts in examples/psql/), then a second install that finds nothing to do.

use std::path::Path;
use std::process::Command;

use pgflow_tests::TestDb;

fn psql_file(url: &str, file: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/psql")
        .join(file);
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-f",
        ])
        .arg(&script)
        .output()
        .expect("psql must be installed (postgresql-client)");
    assert!(
        out.status.success(),
        "psql -f {file} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn install_then_psql_alone_runs_a_diamond_and_a_thousand_element_map() {
    let db = TestDb::empty().await;
    let install = Command::new(env!("CARGO_BIN_EXE_pgflow"))
        .args(["install", "--database-url", db.url()])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(install.status.success(), "{install:?}");
    let text = String::from_utf8_lossy(&install.stdout);
    assert!(
        text.contains("pgmq 1.11.1"),
        "install must name the pgmq version: {text}"
    );
    assert!(
        text.contains("V1__pgflow_core"),
        "install must name the migrations applied: {text}"
    );

    let diamond = psql_file(db.url(), "diamond.sql");
    // The last line with a value: the scripts end by marking their worker stopped (void).
    let last = |text: &str| text.lines().rfind(|l| !l.is_empty()).map(str::to_string);
    assert_eq!(
        last(&diamond).as_deref(),
        Some(r#"completed|{"d": 41}"#),
        "{diamond}"
    );

    let map = psql_file(db.url(), "map.sql");
    assert_eq!(
        last(&map).as_deref(),
        Some(r#"completed|{"total": 333833500}|1001"#),
        "{map}"
    );

    // The scripts' fake workers are marked stopped, so nothing shows as stale afterwards.
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let running: i64 =
        sqlx::query_scalar("select count(*) from pgflow.workers where stopped_at is null")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        running, 0,
        "the psql examples must mark their worker rows stopped"
    );
    pool.close().await;

    let again = Command::new(env!("CARGO_BIN_EXE_pgflow"))
        .args(["install", "--database-url", db.url()])
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("nothing to do"), "{text}");
}
