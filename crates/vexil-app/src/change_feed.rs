//! What `vexil serve`'s evaluation plane reads through the app: the change feed, the
//! changes it names and each env's rows (`sdk/hub.rs`, `sdk/feed.rs` in
//! vexil-server), so that the server reaches the database through vexil-app only.
//! Reads, no audit: the rows are the DB layer as it stands.

use std::time::Duration;

use vexil_store::{Change, ChangeFeed, FlagValue, StoreError};

use crate::app::App;

impl App {
    /// The database's change feed: `NOTIFY` on PostgreSQL, a poll every `poll` on
    /// SQLite (its first event says it listens).
    pub fn change_feed(&self, poll: Duration) -> ChangeFeed {
        self.db.change_feed(poll)
    }

    /// The newest change's sequence number (0 with none).
    pub async fn last_change(&self) -> Result<i64, StoreError> {
        self.db.last_change().await
    }

    /// Up to `limit` changes after `seq`, oldest first.
    pub async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        self.db.changes_since(seq, limit).await
    }

    /// Every row of `env`: flag, value and the audit row that wrote it.
    pub async fn flag_values_in(&self, env: &str) -> Result<Vec<FlagValue>, StoreError> {
        self.db.flag_values_in(env).await
    }

    /// The row of `flag_key` in `env`, if there is one.
    pub async fn flag_value(
        &self,
        flag_key: &str,
        env: &str,
    ) -> Result<Option<FlagValue>, StoreError> {
        self.db.flag_value(flag_key, env).await
    }
}
