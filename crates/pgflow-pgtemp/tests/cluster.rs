//! Behaviour of the throwaway cluster: start, connect, restart, cleanup.

use std::process::Command;

use pgflow_pgtemp::TempCluster;

/// Runs a query through the cluster's own psql over TCP, like a client would.
fn psql(cluster: &TempCluster, sql: &str) -> Result<String, String> {
    let out = Command::new(cluster.bin_dir().join("psql"))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(cluster.admin_url())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[test]
fn started_cluster_accepts_tcp_connections_with_test_settings() {
    let cluster = TempCluster::start().unwrap();
    assert!(cluster
        .admin_url()
        .ends_with(&format!(":{}/postgres", cluster.port())));
    assert_eq!(psql(&cluster, "select 1").unwrap(), "1");
    assert_eq!(psql(&cluster, "show fsync").unwrap(), "off");
    assert_eq!(psql(&cluster, "show max_connections").unwrap(), "400");
    assert_eq!(psql(&cluster, "show server_encoding").unwrap(), "UTF8");
}

#[test]
fn restart_keeps_port_and_data() {
    let cluster = TempCluster::start().unwrap();
    psql(
        &cluster,
        "create table kept(x int); insert into kept values (42)",
    )
    .unwrap();
    let port = cluster.port();

    cluster.stop_fast().unwrap();
    assert!(!cluster.is_accepting());
    assert!(psql(&cluster, "select 1").is_err());

    cluster.start_again().unwrap();
    assert_eq!(cluster.port(), port);
    assert_eq!(psql(&cluster, "select x from kept").unwrap(), "42");

    cluster.restart_fast().unwrap();
    assert_eq!(psql(&cluster, "select x from kept").unwrap(), "42");
}

#[test]
fn two_clusters_run_side_by_side() {
    let a = TempCluster::start().unwrap();
    let b = TempCluster::start().unwrap();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    psql(&a, "create database only_in_a").unwrap();
    let in_b = psql(
        &b,
        "select count(*) from pg_database where datname = 'only_in_a'",
    )
    .unwrap();
    assert_eq!(in_b, "0");
}

#[test]
fn drop_stops_the_server_and_removes_the_dir() {
    let cluster = TempCluster::start().unwrap();
    let data_dir = cluster.data_dir().to_path_buf();
    let port = cluster.port();
    assert!(data_dir.exists());
    drop(cluster);
    assert!(!data_dir.exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
