//! The `Clock` trait: the one way code asks what time it is.
//!
//! This crate never reads the clock itself (invariant 1). Tests pass a settable clock
//! (`vexil-testkit`'s `TestClock`), so a 24-hour soak is tested by moving a value,
//! never by waiting; the binary will pass the system clock once something it runs
//! needs the time (the audit log, issue [B]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

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
