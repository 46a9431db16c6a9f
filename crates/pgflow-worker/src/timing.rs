//! Timing shared by the poller, the executor, the wake-ups and the
//! background services: interruptible sleeps, the wake-up margin and the
//! backoff after database errors. A leaf module, so those pieces depend on it
//! and never on each other.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// How long after a retry or start delay is due the poller looks again.
pub(crate) const WAKE_MARGIN: Duration = Duration::from_millis(50);

/// Sleeps for `delay` unless `stop` fires first; true when stopped.
pub(crate) async fn sleep_or_stop(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

/// Delays after consecutive database errors: 100 ms doubling up to `max`,
/// without jitter and without end. Build a new one to start over after a
/// success.
pub(crate) fn backoff(max: Duration) -> Backoff {
    Backoff {
        delays: ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(max)
            .with_factor(2.0)
            .without_max_times()
            .build(),
        max,
    }
}

/// The delays of [`backoff`].
#[derive(Debug)]
pub(crate) struct Backoff {
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// The next delay (the cap once the sequence has reached it).
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max).min(self.max)
    }

    /// Starts over from the first delay.
    pub(crate) fn reset(&mut self) {
        *self = backoff(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_cap_and_resets() {
        let mut b = backoff(Duration::from_millis(500));
        let got: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
