//! Ctrl-C (and, on Unix, SIGTERM) as a flag the demo can select on.

use anyhow::Context as _;
use tokio::sync::watch;

/// A flag that flips to true on SIGINT or SIGTERM (Ctrl-C elsewhere). The
/// handlers are installed at once, so a signal during startup is not fatal
/// either.
pub fn flag() -> anyhow::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = tx.send(true);
        });
    }
    #[cfg(not(unix))]
    {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::spawn(async move {
            if ctrl_c.await.context("cannot listen for Ctrl-C").is_ok() {
                let _ = tx.send(true);
            }
        });
    }
    Ok(rx)
}

/// Resolves once the flag is set (never, if no signal can come).
pub async fn interrupted(flag: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, i.e. no signal will come.
    if flag.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}
