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
    assert!(
        report.latency.hop_p50_ms >= 0.0 && report.latency.hop_p99_ms >= report.latency.hop_p50_ms
    );
    assert!(report.idle.queries_per_s_per_worker >= 0.0 && report.idle.cpu_percent >= 0.0);

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
