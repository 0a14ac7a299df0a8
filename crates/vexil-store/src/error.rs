//! `StoreError`: what can go wrong talking to the database, each variant keeping
//! its cause, and none of them showing a password.

use crate::url::DatabaseUrl;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}")]
    Connect {
        url: DatabaseUrl,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database {url} is not migrated (at migration {at}, this vexil needs {need}): run `vexil migrate`"
    )]
    NotMigrated {
        url: DatabaseUrl,
        at: i64,
        need: i64,
    },
    #[error(
        "the database {url} was migrated by a newer vexil (it has migration {version}, which this vexil does not know): upgrade vexil"
    )]
    TooNew { url: DatabaseUrl, version: i64 },
    #[error("cannot migrate the database {url}")]
    Migrate {
        url: DatabaseUrl,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    /// A stored value vexil cannot read back (a timestamp, a JSON payload).
    #[error("the database holds a value vexil cannot read: {what}")]
    Corrupt { what: String },
}

impl StoreError {
    /// Whether the database refused a write because a unique key already exists
    /// (two operators creating the same account at once).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Query(sqlx::Error::Database(error)) => error.is_unique_violation(),
            _ => false,
        }
    }
}
