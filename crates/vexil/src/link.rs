//! What both modes share besides resolution: their timing, the retry schedule, and
//! `Link`, how a handle reaches its source once it has (what `Flags::invalidate` reads
//! through).
//!
//! The backoff doubles from 100 ms to 5 s, each wait a random point in the upper half
//! of its step, so instances cut off together do not come back in lockstep.

use std::time::Duration;

use crate::error::Error;
use crate::flags::Shared;

/// How often a handle works, and how it learns of changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// A full re-read this often, whatever the feed says (30 s by default).
    pub(crate) ttl: Duration,
    /// How often SQLite's data version is polled.
    pub(crate) poll: Duration,
    /// Whether to follow the change feed at all. Off, only the TTL refreshes (for a
    /// PostgreSQL behind a pooler that cannot LISTEN). Remote mode always follows.
    pub(crate) feed: bool,
    /// How often this process reports itself (10 s). A change applied is reported
    /// sooner: `RECEIPT_DELAY` after it, bursts coalesced.
    pub(crate) heartbeat: Duration,
    /// How long `start` waits for the first full read before it returns with the
    /// variables' and YAML defaults' values (and says so).
    pub(crate) start_timeout: Duration,
}

/// How soon after applying a change the process reports it.
pub(crate) const RECEIPT_DELAY: Duration = Duration::from_millis(200);

/// The first retry waits about this long; each failure doubles it up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// How long to wait after `failures` failed attempts in a row: doubling from 100 ms to
/// at most 5 s, each a random point in the upper half of its step ("equal jitter"), so
/// that a fleet cut off at the same moment does not come back in lockstep.
pub(crate) fn backoff(failures: usize) -> Duration {
    let step = FIRST_RETRY
        .saturating_mul(1 << failures.min(16))
        .min(MAX_RETRY);
    let half = step / 2;
    half + half.mul_f64(jitter())
}

/// A random number in [0, 1); 0.5 if the system gives no random bytes (a retry a
/// little early or late is harmless).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// How a handle reaches its source, once it has.
pub(crate) enum Link {
    #[cfg(feature = "database")]
    Database(vexil_store::Db),
    #[cfg(feature = "remote")]
    Server(crate::remote::Client),
}

impl Link {
    /// Reads `key`'s row again now (remote mode: the whole snapshot, one request).
    pub(crate) async fn read_again(&self, shared: &Shared, key: &str) -> Result<(), Error> {
        match self {
            #[cfg(feature = "database")]
            Link::Database(db) => crate::database::read_pair(shared, db, key).await,
            #[cfg(feature = "remote")]
            Link::Server(client) => {
                let _ = key;
                crate::remote::read_snapshot(shared, client).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_cap_and_jitters() {
        for failures in 0..40 {
            let step = FIRST_RETRY
                .saturating_mul(1 << failures.min(16))
                .min(MAX_RETRY);
            let wait = backoff(failures);
            assert!(wait >= step / 2 && wait <= step, "{failures}: {wait:?}");
        }
        let waits: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(10)).collect();
        assert!(waits.len() > 1, "no jitter: {waits:?}");
    }
}
