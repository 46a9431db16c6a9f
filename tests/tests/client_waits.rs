//! The client: `RunHandle::wait` under load (many concurrent waits on a
//! small pool share one listener connection and all return), and its
//! errors.

use std::time::Duration;

use futures::future::join_all;
use pgflow::{Client, CompileMode, StepDef, Worker, WorkerConfig, WorkerFlow};
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

const RUNS: i64 = 1000;
/// Runs that are already completed when the waits start; the rest complete
/// while they wait.
const DONE_BEFORE: i64 = 200;

fn add_one_flow() -> WorkerFlow {
    WorkerFlow::builder("add_one")
        .step(StepDef::single("add"), |n: i64, _ctx| async move {
            Ok::<_, std::convert::Infallible>(n + 1)
        })
        .build()
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_waits_on_a_pool_of_four_all_return() {
    let db = TestDb::new().await;
    let worker_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(db.url())
        .await
        .unwrap();
    let worker = Worker::new(
        worker_pool,
        WorkerConfig {
            compile_mode: CompileMode::Development,
            batch_size: 50,
            max_concurrent: 50,
            ..Default::default()
        },
    )
    .flow(add_one_flow())
    .start()
    .await
    .unwrap();

    // The client's own pool: four connections, and a short acquire timeout
    // so that starving it shows up as errors instead of a slow test.
    let client_pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(db.url())
        .await
        .unwrap();
    let client = Client::new(client_pool);

    let mut runs = Vec::new();
    for n in 0..DONE_BEFORE {
        runs.push((n, client.start_flow("add_one", &n).await.unwrap()));
    }
    // Let the first runs complete before anyone waits on them.
    tokio::time::timeout(Duration::from_secs(60), async {
        while count(
            db.pool(),
            "select count(*) from pgflow.runs where status = 'completed'",
        )
        .await
            < DONE_BEFORE
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the first runs completed");
    for n in DONE_BEFORE..RUNS {
        runs.push((n, client.start_flow("add_one", &n).await.unwrap()));
    }

    let waits = join_all(runs.into_iter().map(|(n, run)| async move {
        let out: Value = run.wait().await.unwrap_or_else(|e| panic!("run {n}: {e}"));
        (n, out)
    }));
    let waits = tokio::spawn(waits);

    // While the waits are in flight, the client holds exactly one LISTEN
    // connection for all of them (the worker listens on another channel).
    let listeners = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let n = count(
                db.pool(),
                &format!(
                    "select count(*) from pg_stat_activity where datname = '{}' \
                     and query ilike 'listen%pgflow_events%'",
                    db.name()
                ),
            )
            .await;
            if n > 0 || waits.is_finished() {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a listener showed up");
    assert!(
        listeners <= 1,
        "{listeners} LISTEN connections for one client"
    );

    let outputs = tokio::time::timeout(Duration::from_secs(120), waits)
        .await
        .expect("every wait returned in time")
        .expect("no wait panicked");
    assert_eq!(outputs.len(), RUNS as usize);
    for (n, out) in outputs {
        assert_eq!(out, json!({"add": n + 1}), "run for n={n}");
    }
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn wait_on_an_exhausted_pool_fails_instead_of_retrying_forever() {
    let db = TestDb::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(200))
        .connect(db.url())
        .await
        .unwrap();
    // The application holds the pool's only connection for the whole wait.
    let _held = pool.acquire().await.unwrap();
    let client = Client::new(pool.clone());
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        client.run(uuid::Uuid::new_v4()).wait_terminal(),
    )
    .await
    .expect("wait gave up instead of hanging")
    .expect_err("no connection to read the run with");
    match err {
        pgflow::ClientError::Api(e) => assert!(e.is_pool_timeout(), "{e}"),
        other => panic!("expected a pool timeout, got {other}"),
    }
}

#[tokio::test]
async fn starting_an_unknown_flow_is_flow_not_found() {
    let db = TestDb::new().await;
    let client = Client::new(db.pool().clone());
    let err = client
        .start_flow("no_such_flow", &json!({}))
        .await
        .expect_err("unknown flow");
    assert!(
        matches!(&err, pgflow::ClientError::FlowNotFound(slug) if slug == "no_such_flow"),
        "{err:?}"
    );
    assert_eq!(
        count(db.pool(), "select count(*) from pgflow.runs").await,
        0
    );
}
