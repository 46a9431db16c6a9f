//! `pgflow_db::install::install`: fresh install, idempotence, reuse of an
//! existing pgmq, concurrent installers.

use pgflow_db::install::{install, PgmqAction, PgmqSource};
use pgflow_tests::TestDb;

async fn pgflow_tables(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema = 'pgflow'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn installs_pgmq_and_all_migrations_into_an_empty_database() {
    let db = TestDb::empty().await;
    let report = install(db.url()).await.unwrap();

    assert_eq!(report.pgmq.action, PgmqAction::Installed);
    assert_eq!(report.pgmq.source, PgmqSource::EmbeddedSql);
    let version = report.pgmq.version.clone().expect("pgmq version");
    assert_eq!(report.applied_migrations, pgflow_db::migrations::names());
    assert!(report.already_applied_migrations.is_empty());
    assert_eq!(
        report.schema_version,
        pgflow_db::migrations::latest_version()
    );
    assert!(report.changed());

    let text = report.to_string();
    assert!(
        text.contains(&format!("pgmq {version} installed (embedded SQL)")),
        "{text}"
    );
    if let Some(first) = report.applied_migrations.first() {
        assert!(
            text.contains(&format!("applied migrations: {first}")),
            "{text}"
        );
        assert!(pgflow_tables(&db).await > 0);
    }

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["pgmq"]["action"], "installed");
    assert_eq!(json["pgmq"]["version"], version.as_str());

    // pgmq works as pgflow will use it.
    sqlx::query("select pgmq.create('install_smoke')")
        .execute(db.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn second_install_has_nothing_to_do() {
    let db = TestDb::empty().await;
    let first = install(db.url()).await.unwrap();
    let second = install(db.url()).await.unwrap();

    assert!(!second.changed());
    assert_eq!(second.pgmq.action, PgmqAction::AlreadyPresent);
    assert_eq!(second.pgmq.version, first.pgmq.version);
    assert!(second.applied_migrations.is_empty());
    assert_eq!(
        second.already_applied_migrations,
        pgflow_db::migrations::names()
    );
    let text = second.to_string();
    assert!(text.contains("already present"), "{text}");
    assert!(text.contains("schema up to date"), "{text}");
    assert!(text.ends_with("nothing to do"), "{text}");
}

#[tokio::test]
async fn installed_template_database_is_already_up_to_date() {
    let db = TestDb::new().await;
    let report = install(db.url()).await.unwrap();
    assert!(!report.changed(), "{report}");
}

#[tokio::test]
async fn existing_pgmq_schema_is_reused() {
    let db = TestDb::empty().await;
    pgmq::install::install_sql_from_embedded(db.pool())
        .await
        .unwrap();
    sqlx::query("select pgmq.create('kept_queue')")
        .execute(db.pool())
        .await
        .unwrap();

    let report = install(db.url()).await.unwrap();
    assert_eq!(report.pgmq.action, PgmqAction::AlreadyPresent);
    assert_eq!(report.pgmq.source, PgmqSource::EmbeddedSql);
    assert_eq!(report.applied_migrations, pgflow_db::migrations::names());

    let queues: Vec<String> = sqlx::query_scalar("select queue_name from pgmq.list_queues()")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(queues, vec!["kept_queue".to_string()]);
}

#[tokio::test]
async fn pgmq_without_version_bookkeeping_is_reused_when_complete() {
    let db = TestDb::empty().await;
    pgmq::install::install_sql_from_embedded(db.pool())
        .await
        .unwrap();
    // As if someone had loaded pgmq.sql by hand.
    sqlx::query("drop table pgmq.__pgmq_migrations")
        .execute(db.pool())
        .await
        .unwrap();

    let report = install(db.url()).await.unwrap();
    assert_eq!(report.pgmq.source, PgmqSource::UnversionedSql);
    assert_eq!(report.pgmq.version, None);
}

#[tokio::test]
async fn unrelated_pgmq_schema_is_rejected() {
    let db = TestDb::empty().await;
    sqlx::query("create schema pgmq")
        .execute(db.pool())
        .await
        .unwrap();
    let err = install(db.url()).await.unwrap_err();
    assert!(
        matches!(err, pgflow_db::DbError::PgmqUnrecognized { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn concurrent_installs_both_succeed_and_install_once() {
    let db = TestDb::empty().await;
    let (a, b) = tokio::join!(install(db.url()), install(db.url()));
    let (a, b) = (a.unwrap(), b.unwrap());

    let installed_pgmq = [&a, &b]
        .iter()
        .filter(|r| r.pgmq.action == PgmqAction::Installed)
        .count();
    assert_eq!(installed_pgmq, 1, "{a}\n---\n{b}");
    let mut applied = a.applied_migrations.clone();
    applied.extend(b.applied_migrations.clone());
    assert_eq!(applied, pgflow_db::migrations::names());
}

#[tokio::test]
async fn connection_errors_name_the_url_without_its_password() {
    let err = install("postgres://someone:hunter2@127.0.0.1:1/nowhere")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1/nowhere"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("***"), "{text}");
}
