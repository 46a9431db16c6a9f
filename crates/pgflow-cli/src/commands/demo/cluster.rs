//! The demo's throwaway PostgreSQL cluster: start it (interruptibly), then
//! keep it with instructions or stop and remove it.

use anyhow::Context as _;
use pgflow_pgtemp::TempCluster;
use tokio::sync::watch;

use super::interrupt::interrupted;

/// Starts a cluster; `None` when a signal came first. Without `keep`, a
/// watchdog removes the cluster even if this process dies without
/// unwinding (SIGKILL).
pub async fn start(
    keep: bool,
    flag: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<TempCluster>> {
    let start = tokio::task::spawn_blocking(TempCluster::start);
    let cluster = tokio::select! {
        started = start => started.context("cluster start panicked")?
            .context("cannot start a throwaway PostgreSQL (are the server binaries installed? set PGFLOW_PG_BIN or put pg_ctl on PATH), or pass --database-url")?,
        _ = interrupted(flag) => {
            // The blocking start cannot be cancelled; the cluster it may
            // still create is cleaned up by its watchdog.
            return Ok(None);
        }
    };
    if !keep {
        cluster.stop_when_process_exits()?;
    }
    Ok(Some(cluster))
}

/// Leaves the cluster running and returns how to stop and remove it.
pub fn keep(cluster: TempCluster) -> String {
    let pg_ctl = cluster.bin_dir().join("pg_ctl");
    let data = cluster.data_dir().display().to_string();
    let dir = cluster
        .data_dir()
        .parent()
        .unwrap_or(cluster.data_dir())
        .display()
        .to_string();
    // TempCluster runs the server as `postgres` exactly when we are root.
    let as_service_account = if runs_as_service_account() {
        "runuser -u postgres -- "
    } else {
        ""
    };
    // Skips Drop, which would stop the server and delete its files.
    std::mem::forget(cluster);
    format!(
        "{as_service_account}{} stop -D {data} && rm -rf {dir}",
        pg_ctl.display()
    )
}

/// Stops the cluster and deletes its files.
pub async fn remove(cluster: TempCluster) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .context("cluster cleanup panicked")
}

#[cfg(unix)]
fn runs_as_service_account() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[cfg(not(unix))]
fn runs_as_service_account() -> bool {
    false
}
