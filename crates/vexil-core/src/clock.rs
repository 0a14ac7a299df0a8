//! The `Clock` trait: the one way code asks what time it is; `parse_instant`, the one
//! way a time typed by an operator (a filter's "since") is read.
//!
//! This crate never reads the clock itself (invariant 1). Tests pass a settable clock
//! (`vexil-testkit`'s `TestClock`), so a 24-hour soak is tested by moving a value,
//! never by waiting; the binary passes the system clock (`SystemClock`, in the
//! CLI's `config.rs`).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// Why a text is not a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: expected an RFC 3339 time (2026-11-24T07:35:42Z), a UTC time (2026-11-24T07:35) or a date (2026-11-24)",
    crate::message::quoted(text)
)]
pub struct InstantError {
    text: String,
}

/// Reads a time as operators type it: RFC 3339 with a zone; a zone-less
/// `2026-11-24T07:35` (what an HTML `datetime-local` input sends), read as UTC since
/// every time vexil shows is UTC; or a date, meaning its first instant in UTC.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, InstantError> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(InstantError {
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: Option<&str>) {
        let got = parse_instant(text).ok().map(|at| at.to_rfc3339());
        assert_eq!(got.as_deref(), expected, "{text}");
    }

    #[test]
    fn operators_times_read_as_utc() {
        check("2026-11-24T07:35:42Z", Some("2026-11-24T07:35:42+00:00"));
        check(
            "2026-11-24T08:35:42+01:00",
            Some("2026-11-24T07:35:42+00:00"),
        );
        check("2026-11-24T07:35", Some("2026-11-24T07:35:00+00:00"));
        check("2026-11-24", Some("2026-11-24T00:00:00+00:00"));
        check("yesterday", None);
        check("2026-13-01", None);
    }
}
