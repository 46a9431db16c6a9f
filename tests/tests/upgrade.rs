//! Schema upgrades in place: a database installed by an older release (every
//! earlier migration in turn), holding finished and in-flight runs, is
//! upgraded by `install` to the newest migration. Afterwards its schema is
//! the one a fresh install creates (functions, tables, indexes, constraints,
//! views, privileges), the finished run is untouched, and the in-flight run
//! completes through the upgraded functions.

use crate::common;

use common::*;
use pgflow_db::install::{install, install_through};
use pgflow_tests::{FakeWorker, TestDb};
use serde_json::json;
use sqlx::PgPool;

/// Everything a migration defines in the `pgflow` schema, one line per
/// object, in a stable order. Two databases with equal fingerprints were
/// left in the same state by their migrations.
async fn schema_fingerprint(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid)
                || ') secdef=' || p.prosecdef || ' config=' || coalesce(p.proconfig::text, '')
                || ' acl=' || coalesce(p.proacl::text, '') || ' src=' || md5(p.prosrc)
           from pg_proc p where p.pronamespace = 'pgflow'::regnamespace
         union all
         select 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                || ' notnull=' || a.attnotnull
                || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
           from pg_attribute a
           join pg_class c on c.oid = a.attrelid
           left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
          where c.relnamespace = 'pgflow'::regnamespace and a.attnum > 0 and not a.attisdropped
            and c.relkind in ('r', 'v', 'm', 'p')
         union all
         select 'relation ' || c.relname || ' kind=' || c.relkind::text
                || ' acl=' || coalesce(c.relacl::text, '')
           from pg_class c where c.relnamespace = 'pgflow'::regnamespace and c.relkind <> 'i'
         union all
         select 'index ' || pg_get_indexdef(i.indexrelid)
           from pg_index i join pg_class c on c.oid = i.indexrelid
          where c.relnamespace = 'pgflow'::regnamespace
         union all
         select 'constraint ' || conrelid::regclass::text || ' ' || conname || ' '
                || pg_get_constraintdef(oid)
           from pg_constraint where connamespace = 'pgflow'::regnamespace
         union all
         select 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid))
           from pg_class c where c.relnamespace = 'pgflow'::regnamespace and c.relkind in ('v', 'm')
         union all
         select 'type ' || t.typname
           from pg_type t where t.typnamespace = 'pgflow'::regnamespace and t.typtype in ('c', 'e', 'd')
                and not exists (select 1 from pg_class c where c.reltype = t.oid)
         order by 1",
    )
    .fetch_all(pool)
    .await
    .expect("schema fingerprint")
}

/// The flow every old release can run: a root step, a dependent step.
async fn define_flow(pool: &PgPool) {
    exec(
        pool,
        "select pgflow.create_flow('upgrade_flow', max_attempts => 2)",
    )
    .await;
    exec(pool, "select pgflow.add_step('upgrade_flow', 'first')").await;
    exec(
        pool,
        "select pgflow.add_step('upgrade_flow', 'second', array['first'])",
    )
    .await;
}

/// Claims the flow's next task with functions every release has had
/// (`pgmq.read` and `pgflow.start_tasks`), so it works on the oldest schema.
async fn claim_next(pool: &PgPool, worker: &FakeWorker) -> (uuid::Uuid, String, i32) {
    for _ in 0..200 {
        let task: Option<(uuid::Uuid, String, i32)> = sqlx::query_as(
            "select run_id, step_slug, task_index
               from pgflow.start_tasks($1,
                 (select coalesce(array_agg(msg_id), '{}') from pgmq.read($1, 30, 1)), $2)",
        )
        .bind(&worker.flow)
        .bind(worker.id)
        .fetch_optional(pool)
        .await
        .expect("claim a task");
        if let Some(task) = task {
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no task became visible on {}", worker.flow);
}

async fn complete_next(pool: &PgPool, worker: &FakeWorker, step: &str) -> uuid::Uuid {
    let (run_id, step_slug, task_index) = claim_next(pool, worker).await;
    assert_eq!(step_slug, step);
    let status = complete(
        pool,
        run_id,
        &step_slug,
        task_index,
        json!({ "done": step }),
    )
    .await;
    assert_eq!(status.as_deref(), Some("completed"));
    run_id
}

#[tokio::test]
async fn every_older_schema_upgrades_to_the_fresh_schema_and_keeps_its_runs() {
    let fresh = TestDb::empty().await;
    install(fresh.url()).await.expect("fresh install");
    let fresh_schema = schema_fingerprint(fresh.pool()).await;
    assert!(
        fresh_schema
            .iter()
            .any(|l| l.starts_with("function start_flow("))
            && fresh_schema
                .iter()
                .any(|l| l.starts_with("column runs.run_id ")),
        "the fingerprint sees the schema: {fresh_schema:?}"
    );
    let names = pgflow_db::migrations::names();
    let latest = pgflow_db::migrations::latest_version().expect("migrations exist");

    for from in 1..latest {
        let db = TestDb::empty().await;
        let pool = db.pool();
        let old = install_through(db.url(), from).await.expect("old install");
        assert_eq!(old.schema_version, Some(from));

        // A finished run and a run whose first task is claimed mid-flight.
        define_flow(pool).await;
        let worker = FakeWorker::register(pool, "upgrade_flow").await;
        let finished = start(pool, "upgrade_flow", json!({ "n": 1 })).await;
        complete_next(pool, &worker, "first").await;
        complete_next(pool, &worker, "second").await;
        assert_eq!(run_status(pool, finished).await, "completed");
        let finished_output = run_output(pool, finished).await;

        let in_flight = start(pool, "upgrade_flow", json!({ "n": 2 })).await;
        let (claimed_run, claimed_step, _) = claim_next(pool, &worker).await;
        assert_eq!((claimed_run, claimed_step.as_str()), (in_flight, "first"));

        let upgrade = install(db.url()).await.expect("upgrade");
        assert_eq!(
            upgrade.applied_migrations,
            names[from as usize..].to_vec(),
            "upgrading from V{from} applies exactly the newer migrations"
        );
        assert_eq!(upgrade.schema_version, Some(latest));
        assert_eq!(
            schema_fingerprint(pool).await,
            fresh_schema,
            "V{from} upgraded to V{latest} differs from a fresh install"
        );

        // Old data survives; the in-flight task completes through the new functions.
        assert_eq!(run_status(pool, finished).await, "completed");
        assert_eq!(run_output(pool, finished).await, finished_output);
        let status = complete(pool, in_flight, "first", 0, json!({ "done": "first" })).await;
        assert_eq!(status.as_deref(), Some("completed"));
        assert_eq!(complete_next(pool, &worker, "second").await, in_flight);
        assert_eq!(run_status(pool, in_flight).await, "completed");
        assert_eq!(
            run_output(pool, in_flight).await,
            Some(json!({ "second": { "done": "second" } }))
        );
    }
}

/// A worker role created with `setup_roles` before the newest migration gets, on upgrade,
/// what `pgflow worker` needs (flow shapes, `postpone_task_retry`) without running
/// `setup_roles` again; the reader role does not.
#[tokio::test]
async fn an_existing_worker_role_can_serve_pgflow_worker_after_upgrade() {
    let db = TestDb::empty().await;
    install_through(db.url(), version_before("worker_role"))
        .await
        .expect("old install");
    let (worker_role, reader_role) = (format!("upw_{}", db.name()), format!("upr_{}", db.name()));
    sqlx::query("select pgflow.setup_roles($1, $2)")
        .bind(&worker_role)
        .bind(&reader_role)
        .execute(db.pool())
        .await
        .unwrap();
    install(db.url()).await.expect("upgrade");
    let may = |role: &str| {
        format!(
            "select has_function_privilege('{role}', 'pgflow.postpone_task_retry(uuid, text, integer, integer)', 'execute')
                and has_function_privilege('{role}', 'pgflow._get_flow_shape(text)', 'execute')
                and has_table_privilege('{role}', 'pgflow.deps', 'select')"
        )
    };
    let pool = db.pool();
    let granted = |sql: String| async move {
        sqlx::query_scalar::<_, bool>(&sql)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert!(
        granted(may(&worker_role)).await,
        "worker role after upgrade"
    );
    assert!(
        !granted(may(&reader_role)).await,
        "reader role after upgrade"
    );
}

/// The upgrade that changed what claim_tasks returns (drop and create) and added
/// start_worker_tasks keeps a worker role set up by the previous version able to claim.
#[tokio::test]
async fn a_worker_role_of_the_previous_version_can_still_claim_after_upgrading() {
    let db = TestDb::empty().await;
    install_through(db.url(), version_before("task_settings"))
        .await
        .expect("old install");
    let role = format!("ts_worker_{}", uuid::Uuid::new_v4().simple());
    sqlx::query("select pgflow.setup_roles($1, $1 || '_reader')")
        .bind(&role)
        .execute(db.pool())
        .await
        .unwrap();
    install(db.url()).await.expect("upgrade");
    for function in [
        "pgflow.claim_tasks(text, uuid, uuid, integer, integer)",
        "pgflow.start_worker_tasks(text, bigint[], uuid)",
    ] {
        let (role_may, public_may): (bool, bool) = sqlx::query_as(
            "select has_function_privilege($1, $2, 'execute'),
                    exists (select 1 from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                             where p.oid = $2::regprocedure and a.grantee = 0)",
        )
        .bind(&role)
        .bind(function)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert!(role_may, "{role} lost EXECUTE on {function}");
        assert!(!public_may, "PUBLIC may execute {function}");
    }
}

/// The version just before the migration named `name` (`V<n>__<name>`): the
/// schema a database had when that migration was new.
fn version_before(name: &str) -> i32 {
    let suffix = format!("__{name}");
    let found = pgflow_db::migrations::names()
        .into_iter()
        .find(|m| m.ends_with(&suffix))
        .unwrap_or_else(|| panic!("no migration named {name}"));
    let version: i32 = found[1..found.find("__").unwrap()].parse().unwrap();
    version - 1
}
