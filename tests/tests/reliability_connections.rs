//! Reliability under connection faults: worker connections terminated by
//! the server several times a second, a proxy that cuts connections at
//! random points and right after a `complete_task` commits (before its reply
//! arrives), and another session idle in a transaction all along. Every run
//! completes, nothing is recorded twice (`reliability_support::check_mix`).

use crate::reliability_support;

use std::time::{Duration, Instant};

use pgflow_tests::TestDb;
use rand::Rng;
use reliability_support::proxy::{FaultPlan, FaultProxy};
use reliability_support::{
    assert_still_idle_in_transaction, assert_workers_alive, check_mix, completed_tasks,
    driver_pool, idle_in_transaction, install_completion_audit, log_lines_with, mix_worker_args,
    spawn_worker, start_mix, unfinished_runs, wait_all_completed, MixSize,
};

const SIZE: MixSize = MixSize {
    map_len: 1500,
    diamonds: 50,
    chains: 3,
};

fn worker_args() -> Vec<String> {
    let mut args = mix_worker_args();
    // Slow enough map tasks that the faults overlap plenty of work.
    args.extend(["--task-ms".to_string(), "150".to_string()]);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_worker_connections_and_an_idle_transaction_lose_and_duplicate_nothing() {
    let db = TestDb::new().await;
    install_completion_audit(db.pool()).await;
    let args = worker_args();
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(spawn_worker(db.url(), &args).await);
    }
    let idle = idle_in_transaction(db.url()).await;
    let driver = driver_pool(db.url()).await;
    let mix = start_mix(&driver, SIZE).await;

    // Several times a second, terminate a few of the workers' connections
    // (found by application_name; never the driver's or the idle session).
    let started = Instant::now();
    let mut terminated = 0i64;
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(20) && unfinished_runs(&driver).await != 0 {
        let n: i64 = sqlx::query_scalar(
            "select count(*) filter (where pg_terminate_backend(pid)) from (
               select pid from pg_stat_activity
                where datname = current_database() and application_name = 'pgflow-test-worker'
                  and pid <> pg_backend_pid()
                order by random() limit 4) victims",
        )
        .fetch_one(&driver)
        .await
        .unwrap();
        terminated += n;
        rounds += 1;
        let pause = rand::thread_rng().gen_range(150..350);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let done_during_faults = completed_tasks(&driver).await;
    wait_all_completed(&driver, Duration::from_secs(60)).await;
    let stats = check_mix(&driver, &mix).await;
    eprintln!(
        "terminations: {terminated} connections terminated in {rounds} rounds over {:?} \
         ({done_during_faults}/{} tasks done meanwhile); total {:?}; {stats:?}",
        started.elapsed(),
        mix.tasks,
        started.elapsed()
    );
    assert!(
        terminated >= 10,
        "only {terminated} connections were terminated"
    );
    assert_still_idle_in_transaction(&driver).await;
    assert_workers_alive(&mut workers);
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_cutting_connections_and_losing_commit_replies_records_everything_once() {
    let db = TestDb::new().await;
    install_completion_audit(db.pool()).await;
    let parsed = url::Url::parse(db.url()).unwrap();
    let upstream = tokio::net::lookup_host((
        parsed.host_str().unwrap().to_string(),
        parsed.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = FaultProxy::start(
        upstream,
        FaultPlan {
            random_cut_chance: 0.7,
            random_cut_bytes: (300, 20_000),
            targeted_cut_chance: 0.05,
            claim_cut_chance: 0.0,
        },
    )
    .await;
    let worker_url = proxy.url_for(db.url());
    let args = worker_args();
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(spawn_worker(&worker_url, &args).await);
    }
    let idle = idle_in_transaction(db.url()).await;
    let driver = driver_pool(db.url()).await;
    let mix = start_mix(&driver, SIZE).await;

    proxy.set_faults(true);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15)
        && unfinished_runs(&driver).await != 0
        && (started.elapsed() < Duration::from_secs(8)
            || proxy.targeted_cuts() < 10
            || proxy.random_cuts() < 5)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let faults_for = started.elapsed();
    proxy.set_faults(false);
    let (targeted, random) = (proxy.targeted_cuts(), proxy.random_cuts());
    let done_during_faults = completed_tasks(&driver).await;
    wait_all_completed(&driver, Duration::from_secs(60)).await;
    let stats = check_mix(&driver, &mix).await;
    let retries = log_lines_with(&workers, "; retrying");
    eprintln!(
        "proxy: {targeted} replies lost after commit, {random} random cuts, {} connections, \
         over {faults_for:?} ({done_during_faults}/{} tasks done meanwhile); total {:?}; \
         {retries} report retries logged; {stats:?}",
        proxy
            .stats
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        mix.tasks,
        started.elapsed()
    );
    assert!(
        targeted >= 3,
        "only {targeted} complete_task replies were lost"
    );
    assert!(random >= 3, "only {random} random cuts happened");
    // Each lost reply is an error the worker retried (and the audit shows the
    // retry changed nothing); a refused output would have been failed instead.
    assert!(
        retries as u64 >= targeted,
        "{targeted} complete_task replies were lost but only {retries} retries were logged"
    );
    // A worker that took a lost connection for a refused output would have failed the
    // attempt (fail_task): then some task would carry an error other than the flaky step's
    // deliberate one. Checked in the database, not by a word in the logs.
    let other_errors: Vec<(String, String)> = sqlx::query_as(
        "select step_slug, error_message from pgflow.step_tasks
          where error_message is not null
            and error_message <> 'handler returned an error: flaky: fails on its first attempt'",
    )
    .fetch_all(&driver)
    .await
    .unwrap();
    assert_eq!(
        other_errors,
        vec![],
        "a worker treated a lost connection as a refused output"
    );
    assert_still_idle_in_transaction(&driver).await;
    assert_workers_alive(&mut workers);
    drop(idle);
}
