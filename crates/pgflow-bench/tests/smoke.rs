//! Runs every workload of the harness at tiny sizes against a fresh test
//! database, with real worker processes, to prove the harness works. Asserts
//! shape and sanity, never speed.

use std::path::PathBuf;

use pgflow_bench::{BenchArgs, SelfCommand, WorkerArgs};
use pgflow_tests::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_at_tiny_sizes() {
    let db = TestDb::new().await;
    let args = BenchArgs {
        mode: None,
        workers: 2,
        idle_secs: 1,
        map_size: 50,
        chain_runs: 5,
        latency_runs: 2,
        reference_secs: 0.3,
        profile: false,
        worker: WorkerArgs::default(),
    };
    let cmd = SelfCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_pgflow-bench")),
        prefix: Vec::new(),
    };
    let report = pgflow_bench::bench(Some(db.url()), &args, &cmd, &|m| eprintln!("{m}"))
        .await
        .expect("the harness runs");

    assert!(report.reference_tps > 0.0);
    assert_eq!(report.map.tasks, 51);
    assert!(report.map.tasks_per_s > 0.0 && report.map.ratio > 0.0);
    assert_eq!(report.chain.steps, 25);
    assert!(report.chain.steps_per_s > 0.0 && report.chain.runs_per_s > 0.0);
    assert_eq!(report.latency.hops, 2 * 4, "4 hops per 5-step run");
    // Percentiles are ordered and a hop (a commit, then a claim) takes some time.
    let l = &report.latency;
    assert!(
        0.0 < l.hop_p50_ms
            && l.hop_p50_ms <= l.hop_p95_ms
            && l.hop_p95_ms <= l.hop_p99_ms
            && l.hop_p99_ms <= l.hop_max_ms,
        "{l:?}"
    );
    assert!(0.0 < l.run_p50_ms && l.run_p50_ms <= l.run_p95_ms, "{l:?}");
    // A 5-step run contains 4 hops, so it lasts at least as long as its shortest hop.
    assert!(
        l.run_p50_ms >= l.hop_p50_ms.min(l.hop_max_ms) / 4.0,
        "{l:?}"
    );
    // Idle figures are rates over a measured window: finite, and a worker's CPU share is at
    // most every core of the machine.
    let idle = &report.idle;
    assert!(idle.secs > 0.0 && !idle.query_source.is_empty(), "{idle:?}");
    assert!(
        idle.queries_per_s_per_worker.is_finite() && idle.queries_per_s_per_worker >= 0.0,
        "{idle:?}"
    );
    assert!(
        idle.cpu_percent.is_finite()
            && (0.0..=100.0 * report.machine.cores as f64).contains(&idle.cpu_percent),
        "{idle:?} on {} cores",
        report.machine.cores
    );

    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "/reference_tps",
        "/map/tasks_per_s",
        "/map/ratio",
        "/chain/steps_per_s",
        "/chain/runs_per_s",
        "/chain/ratio",
        "/latency/hop_p50_ms",
        "/latency/hop_p95_ms",
        "/latency/hop_p99_ms",
        "/latency/run_p50_ms",
        "/idle/queries_per_s_per_worker",
        "/idle/cpu_percent",
        "/machine/cores",
        "/machine/postgres_version",
        "/machine/synchronous_commit",
        "/machine/fsync",
        "/machine/shared_buffers",
        "/machine/max_connections",
    ] {
        assert!(json.pointer(key).is_some(), "missing {key} in {json:#}");
    }
    assert!(report.table().contains("hop p99 ms"));
}
