//! Worker lifecycle and client behaviour, with the worker in-process:
//! compile modes, deprecation, failed and cancelled runs, run input access.

use std::time::Duration;

use pgflow::{
    Client, ClientError, CompileMode, StepDef, Worker, WorkerConfig, WorkerError, WorkerFlow,
};
use pgflow_tests::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

type R<T> = Result<T, String>;

async fn worker_pool(db: &TestDb) -> PgPool {
    PgPoolOptions::new()
        .max_connections(6)
        .acquire_timeout(Duration::from_secs(3))
        .connect(db.url())
        .await
        .unwrap()
}

fn config(mode: CompileMode) -> WorkerConfig {
    WorkerConfig {
        compile_mode: mode,
        max_poll: Duration::from_secs(1),
        heartbeat_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(5),
        ..Default::default()
    }
}

fn evolving(with_b: bool) -> WorkerFlow {
    let mut b = WorkerFlow::builder("evolving")
        .step(StepDef::single("a"), |_: Value, _| async { R::Ok(1) });
    if with_b {
        b = b.step(
            StepDef::single("b").depends_on(["a"]),
            |_: Value, _| async { R::Ok(2) },
        );
    }
    b.build().unwrap()
}

async fn worker_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from pgflow.workers")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn production_refuses_a_changed_flow_development_recompiles() {
    let db = TestDb::new().await;
    let pool = worker_pool(&db).await;
    let w = Worker::new(pool.clone(), config(CompileMode::Production))
        .flow(evolving(false))
        .start()
        .await
        .unwrap();
    w.shutdown().await.unwrap();

    let err = Worker::new(pool.clone(), config(CompileMode::Production))
        .flow(evolving(true))
        .start()
        .await
        .err()
        .expect("a changed shape must be refused in production");
    match err {
        WorkerError::ShapeMismatch { flow, differences } => {
            assert_eq!(flow, "evolving");
            assert!(
                differences.iter().any(|d| d.contains("Step count differs")
                    && d.contains("in the worker's definition")
                    && d.contains("in the database")),
                "{differences:?}"
            );
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        worker_rows(db.pool()).await,
        1,
        "a refused worker must not register"
    );

    let w = Worker::new(pool.clone(), config(CompileMode::Development))
        .flow(evolving(true))
        .start()
        .await
        .unwrap();
    let out: Value = Client::new(pool.clone())
        .start_flow("evolving", &json!({}))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(out, json!({"b": 2}));
    w.shutdown().await.unwrap();

    // Skip never touches definitions, even when they differ.
    let w = Worker::new(pool, config(CompileMode::Skip))
        .flow(evolving(false))
        .start()
        .await
        .unwrap();
    w.shutdown().await.unwrap();
    let steps: i64 =
        sqlx::query_scalar("select count(*) from pgflow.steps where flow_slug = 'evolving'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(steps, 2);
}

#[tokio::test]
async fn deprecated_worker_stops_and_is_marked_stopped() {
    let db = TestDb::new().await;
    let running = Worker::new(worker_pool(&db).await, config(CompileMode::Development))
        .flow(evolving(false))
        .start()
        .await
        .unwrap();
    let id = running.worker_ids()[0];
    sqlx::query("update pgflow.workers set deprecated_at = now() where worker_id = $1")
        .bind(id)
        .execute(db.pool())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), running.wait())
        .await
        .expect("a deprecated worker stops by itself")
        .unwrap();
    let stopped: bool = sqlx::query_scalar(
        "select stopped_at is not null from pgflow.workers where worker_id = $1",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(stopped);
}

#[tokio::test]
async fn client_reports_failed_steps_cancellations_and_unknown_runs() {
    let db = TestDb::new().await;
    let fragile = WorkerFlow::builder("fragile")
        .max_attempts(1)
        .step(StepDef::single("ok"), |_: Value, _| async { R::Ok(1) })
        .step(
            StepDef::single("boom").depends_on(["ok"]),
            |_: Value, _| async { R::<i64>::Err("kaboom".into()) },
        )
        .build()
        .unwrap();
    // A flow with no worker polling it, so its run stays started.
    let parked = WorkerFlow::builder("parked")
        .step(StepDef::single("never"), |_: Value, _| async { R::Ok(0) })
        .build()
        .unwrap();
    let pool = worker_pool(&db).await;
    pgflow::db::api::ensure_flow_compiled(&pool, "parked", &parked.flow().shape().to_json(), false)
        .await
        .unwrap();
    let w = Worker::new(pool.clone(), config(CompileMode::Development))
        .flow(fragile)
        .start()
        .await
        .unwrap();
    let client = Client::new(pool.clone());

    let err = client
        .start_flow("fragile", &json!({}))
        .await
        .unwrap()
        .wait::<Value>()
        .await
        .unwrap_err();
    match &err {
        ClientError::RunFailed { steps, .. } => {
            assert_eq!(steps.len(), 1);
            assert_eq!(steps[0].step_slug, "boom");
            assert_eq!(
                steps[0].error_message.as_deref(),
                Some("handler returned an error: kaboom")
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.to_string()
            .contains("step boom: handler returned an error: kaboom"),
        "{err}"
    );

    let run = client.start_flow("parked", &json!({})).await.unwrap();
    assert!(client.cancel_run(run.run_id()).await.unwrap());
    assert!(matches!(
        run.wait::<Value>().await,
        Err(ClientError::RunCancelled(_))
    ));

    let unknown = uuid::Uuid::new_v4();
    assert!(client.get_run(unknown).await.unwrap().is_none());
    assert!(matches!(
        client.run(unknown).wait::<Value>().await,
        Err(ClientError::RunNotFound(_))
    ));
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn handlers_can_read_the_run_input_and_get_typed_inputs() {
    let db = TestDb::new().await;
    let flow = WorkerFlow::builder("ctx_flow")
        .max_attempts(1)
        .step(StepDef::single("root"), |input: Value, _| async move {
            R::Ok(input["n"].as_i64().unwrap_or(0) * 10)
        })
        .step(
            StepDef::single("dependent").depends_on(["root"]),
            |deps: Value, ctx| async move {
                let run_input = ctx.run_input().await.map_err(|e| e.to_string())?;
                R::Ok(json!({"deps": deps, "tag": run_input["tag"], "step": ctx.step_slug()}))
            },
        )
        .step(
            StepDef::single("typed").depends_on(["dependent"]),
            |_: Vec<String>, _| async { R::Ok(0) },
        )
        .build()
        .unwrap();
    let pool = worker_pool(&db).await;
    let w = Worker::new(pool.clone(), config(CompileMode::Development))
        .flow(flow)
        .start()
        .await
        .unwrap();
    let client = Client::new(pool);
    let err = client
        .start_flow("ctx_flow", &json!({"n": 4, "tag": "hello"}))
        .await
        .unwrap()
        .wait::<Value>()
        .await;
    // `typed` expects an array but gets an object: a clear input error.
    match err {
        Err(ClientError::RunFailed { steps, .. }) => {
            assert_eq!(steps[0].step_slug, "typed");
            let msg = steps[0].error_message.clone().unwrap_or_default();
            assert!(
                msg.starts_with("handler input did not match the expected type"),
                "{msg}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let output: Value =
        sqlx::query_scalar("select output from pgflow.step_states where step_slug = 'dependent'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(
        output,
        json!({"deps": {"root": 40}, "tag": "hello", "step": "dependent"})
    );
    w.shutdown().await.unwrap();
}

/// A listener that cannot connect (as behind a pooler that refuses
/// sessions, or a wrong `listen_options`) costs latency, never progress:
/// the worker's periodic read and the client's re-read carry the run.
#[tokio::test]
async fn unreachable_listen_address_falls_back_to_polling() {
    let db = TestDb::new().await;
    // A port nothing listens on (bound, read, released).
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead: sqlx::postgres::PgConnectOptions =
        format!("postgres://nobody@127.0.0.1:{dead_port}/x")
            .parse()
            .unwrap();
    let w = Worker::new(
        worker_pool(&db).await,
        WorkerConfig {
            listen_options: Some(dead.clone()),
            ..config(CompileMode::Development)
        },
    )
    .flow(evolving(false))
    .start()
    .await
    .unwrap();
    let client = Client::with_listen_options(db.pool().clone(), dead);
    let run = client.start_flow("evolving", &json!({})).await.unwrap();
    let out: Value = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("run finished by polling")
        .unwrap();
    assert_eq!(out, json!({"a": 1}));
    w.shutdown().await.unwrap();
}

/// `WorkerConfig::dead_worker_after` is recorded for each worker row the worker
/// registers, so the fleet's sweep gives it that much grace (see
/// `sql_security::a_worker_can_lengthen_but_not_shorten_its_own_dead_after`).
#[tokio::test]
async fn dead_worker_after_is_recorded_for_the_sweep() {
    let db = TestDb::new().await;
    let pool = worker_pool(&db).await;
    let w = Worker::new(
        pool.clone(),
        WorkerConfig {
            dead_worker_after: Some(Duration::from_secs(90)),
            ..config(CompileMode::Development)
        },
    )
    .flow(evolving(false))
    .start()
    .await
    .unwrap();
    let recorded: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from d.dead_after)::float8
           from pgflow.worker_dead_after d join pgflow.workers w using (worker_id)
          where w.stopped_at is null",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(recorded, vec![90.0]);

    // Without it, nothing is recorded: the database setting applies.
    let w = Worker::new(pool.clone(), config(CompileMode::Development))
        .flow(evolving(false))
        .start()
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from pgflow.worker_dead_after")
        .fetch_one(db.pool())
        .await
        .unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(rows, 1, "only the first worker asked for grace");
}
