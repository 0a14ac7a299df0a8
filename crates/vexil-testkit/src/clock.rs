//! `TestClock`: a `Clock` that stands still until the test moves it, so a 24-hour
//! soak is tested by `advance(24h)`, never by waiting.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use vexil_core::Clock;

/// A settable clock, shared between the test and the code under test (wrap it in an
/// `Arc`; `Clock` is implemented for `Arc<C>`).
#[derive(Debug)]
pub struct TestClock {
    // A Mutex rather than an atomic: tests are not hot, and a `DateTime` is clearer
    // to read in a failing assertion than a count of nanoseconds.
    now: Mutex<DateTime<Utc>>,
}

impl TestClock {
    /// A clock that reads `now` until moved.
    pub fn at(now: DateTime<Utc>) -> TestClock {
        TestClock {
            now: Mutex::new(now),
        }
    }

    /// A clock at a fixed, unremarkable instant: 2026-01-15 09:30:00 UTC.
    pub fn fixed() -> TestClock {
        let start = DateTime::parse_from_rfc3339("2026-01-15T09:30:00Z")
            .expect("a valid RFC 3339 literal")
            .with_timezone(&Utc);
        TestClock::at(start)
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A test that panicked while holding the lock has already failed; the value
        // inside is still a valid instant.
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn moves_only_when_told() {
        let clock = Arc::new(TestClock::fixed());
        let shared: Arc<dyn Clock> = clock.clone();
        let start = shared.now();
        assert_eq!(shared.now(), start);
        clock.advance(TimeDelta::hours(24));
        assert_eq!(shared.now() - start, TimeDelta::hours(24));
        clock.set(start);
        assert_eq!(shared.now(), start);
    }
}
