//! `pgflow bench` through the CLI binary, at tiny sizes: the harness's worker processes are
//! this binary re-executed (`pgflow bench worker`), which only the real binary can show.
//! Asserts the report's shape and counts, never speed.

use crate::common;

use common::*;
use pgflow_tests::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_every_workload_through_the_cli_binary() {
    let db = TestDb::new().await;
    let report = json(
        &[
            "bench",
            "--workers",
            "1",
            "--idle-secs",
            "1",
            "--map-size",
            "20",
            "--chain-runs",
            "3",
            "--latency-runs",
            "2",
            "--reference-secs",
            "0.3",
        ],
        db.url(),
    );
    assert_eq!(
        report["map"]["tasks"], 21,
        "20 map tasks + the sum: {report:#}"
    );
    assert_eq!(
        report["chain"]["steps"], 15,
        "3 runs of 5 steps: {report:#}"
    );
    assert_eq!(
        report["latency"]["hops"], 8,
        "4 hops per 5-step run: {report:#}"
    );
    for key in [
        "/reference_tps",
        "/map/tasks_per_s",
        "/chain/steps_per_s",
        "/latency/hop_p50_ms",
        "/idle/queries_per_s_per_worker",
    ] {
        let v = report.pointer(key).and_then(|v| v.as_f64());
        assert!(v.is_some_and(f64::is_finite), "{key} in {report:#}");
    }
    assert!(report["map"]["tasks_per_s"].as_f64().unwrap() > 0.0);
    // The benchmark's runs all completed in the given database.
    let unfinished: i64 =
        sqlx::query_scalar("select count(*) from pgflow.runs where status <> 'completed'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(unfinished, 0);
}
