//! Reliability under churn: worker processes SIGKILLed at random while a mix
//! of runs is processed, and PostgreSQL restarted mid-run. At the end every
//! run has completed with the right output, every task and step completion
//! was recorded exactly once, the counters agree with the tasks and no live
//! queue message is left (see `reliability_support::check_mix`).

use crate::reliability_support;
use crate::worker_support;

use std::time::{Duration, Instant};

use pgflow_pgtemp::TempCluster;
use pgflow_tests::TestDb;
use rand::Rng;
use reliability_support::{
    check_mix, completed_tasks, driver_pool, fast_dead_worker_detection, install_completion_audit,
    mix_worker_args, spawn_worker, start_mix, unfinished_runs, wait_all_completed, MixSize,
};
use worker_support::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sigkills_lose_nothing_and_record_everything_once() {
    let db = TestDb::new().await;
    fast_dead_worker_detection(db.pool()).await;
    install_completion_audit(db.pool()).await;
    let mut args = mix_worker_args();
    // 100 ms map tasks: the map takes long enough for a dozen kills.
    args.extend(["--task-ms".to_string(), "100".to_string()]);
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(spawn_worker(db.url(), &args).await);
    }
    let mix = start_mix(
        db.pool(),
        MixSize {
            map_len: 5000,
            diamonds: 200,
            chains: 5,
        },
    )
    .await;

    // Kill a random worker every 1-2 s and start a replacement, until every
    // run is done or the chaos window closes.
    let started = Instant::now();
    let chaos_window = Duration::from_secs(45);
    let mut kills = Vec::new();
    while started.elapsed() < chaos_window && unfinished_runs(db.pool()).await != 0 {
        let pause = rand::thread_rng().gen_range(1000..2000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let victim = rand::thread_rng().gen_range(0..workers.len());
        let mut dead = workers.swap_remove(victim);
        dead.sigkill();
        kills.push((started.elapsed(), completed_tasks(db.pool()).await));
        workers.push(spawn_worker(db.url(), &args).await);
    }
    let kills_before_done = kills.iter().filter(|(_, done)| *done < mix.tasks).count();
    wait_all_completed(db.pool(), Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    let stats = check_mix(db.pool(), &mix).await;
    eprintln!(
        "chaos: {} tasks in {elapsed:?}; {} SIGKILLs ({kills_before_done} with work left): {kills:?}; {stats:?}",
        mix.tasks,
        kills.len()
    );
    assert!(
        kills_before_done >= 3,
        "only {kills_before_done} kills happened while work was left; the chaos proved little"
    );
    assert!(
        stats.requeues > 0,
        "no task was ever requeued: no kill hit a worker with tasks in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_twice_mid_run_and_everything_completes() {
    // A cluster of its own: restarting the shared one would break other tests.
    let cluster = tokio::task::spawn_blocking(TempCluster::start)
        .await
        .unwrap()
        .expect("temp cluster");
    let url = cluster.url("postgres");
    pgflow::db::install::install(&url).await.expect("install");
    let pool = driver_pool(&url).await;
    fast_dead_worker_detection(&pool).await;
    install_completion_audit(&pool).await;
    let mut args = mix_worker_args();
    // Slow map tasks, so the run is still going at both restarts.
    args.extend(["--task-ms".to_string(), "50".to_string()]);
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(spawn_worker(&url, &args).await);
    }
    let mix = start_mix(
        &pool,
        MixSize {
            map_len: 1500,
            diamonds: 50,
            chains: 3,
        },
    )
    .await;
    let started = Instant::now();
    let mut cluster = cluster;
    for (round, threshold) in [(1, mix.tasks / 4), (2, mix.tasks / 2)] {
        let p = pool.clone();
        wait_until(
            &format!("{threshold} tasks to complete before restart {round}"),
            Duration::from_secs(60),
            || {
                let p = p.clone();
                async move { completed_tasks(&p).await >= threshold }
            },
        )
        .await;
        let done = completed_tasks(&pool).await;
        assert!(
            done < mix.tasks,
            "everything finished before restart {round}; slow the tasks down"
        );
        let at = started.elapsed();
        cluster = tokio::task::spawn_blocking(move || {
            cluster.restart_fast().expect("restart postgres");
            cluster
        })
        .await
        .unwrap();
        eprintln!(
            "restart {round} at {at:?} with {done}/{} tasks done",
            mix.tasks
        );
    }
    wait_all_completed(&pool, Duration::from_secs(60)).await;
    let stats = check_mix(&pool, &mix).await;
    eprintln!(
        "restarts: {} tasks in {:?}; {stats:?}",
        mix.tasks,
        started.elapsed()
    );
    reliability_support::assert_workers_alive(&mut workers);
    drop(workers);
    pool.close().await;
    drop(cluster);
}
