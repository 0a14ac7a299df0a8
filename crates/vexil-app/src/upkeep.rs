//! What a long-running `vexil serve` tidies away, and what it asks of the database
//! to say it is ready: expired console sessions, instances gone for a day, changes
//! older than a day (the feed's catch-up never needs more), and whether the schema
//! is migrated. None of it is audited: it removes only what has expired.

use std::time::Duration;

use chrono::{DateTime, Utc};
use vexil_store::StoreError;

use crate::app::App;

impl App {
    /// Deletes console sessions that expired before `now`; how many.
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db.delete_expired_sessions(now).await
    }

    /// Forgets instances that have not reported for `gone_for`; how many.
    pub async fn forget_instances_gone_for(&self, gone_for: Duration) -> Result<u64, StoreError> {
        self.db.prune_instances(gone_for).await
    }

    /// Forgets changes recorded before `before`; how many.
    pub async fn forget_changes_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db.prune_changes(before).await
    }

    /// Whether the database answers and holds every migration this build knows.
    pub async fn check_migrated(&self) -> Result<(), StoreError> {
        self.db.check_migrated().await
    }

    /// The database's clock: what the instances' report times are stamped by.
    pub async fn database_clock(&self) -> Result<DateTime<Utc>, StoreError> {
        self.db.clock().await
    }
}
