//! `StoreError`: what can go wrong talking to the database, each variant keeping
//! its cause, and none of them showing a password.

use crate::url::DatabaseUrl;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("this vexil is built without {backend} support (its feature `{feature}`)")]
    NotBuiltIn {
        backend: &'static str,
        feature: &'static str,
    },
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
    /// An old console's database: the runbook's tables, no vexil schema.
    #[error(
        "the database {url} holds the runbook's tables ({found}) but no vexil schema: run `vexil migrate --adopt` to keep them, with their history, and add vexil's schema around them (docs/adopt.md)"
    )]
    AdoptionNeeded {
        url: DatabaseUrl,
        found: crate::adopt::RunbookTables,
    },
    /// `vexil migrate --adopt` on a database with nothing to adopt.
    #[error("nothing to adopt in the database {url}: {reason}")]
    NothingToAdopt { url: DatabaseUrl, reason: String },
    /// The shape check refused; each problem names the table, column and rows.
    #[error("cannot adopt the database {url} (nothing was changed): {}", problems.join("; "))]
    NotAdoptable {
        url: DatabaseUrl,
        problems: Vec<String>,
    },
    /// A step of an adoption failed; the transaction rolled back.
    #[error("cannot adopt the database {url} (nothing was changed)")]
    Adopt {
        url: DatabaseUrl,
        #[source]
        source: Box<StoreError>,
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
    /// Writing rows out (an audit export) failed.
    #[error("cannot write the export")]
    Export {
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the database is out of reach (down, unreachable, timed out, shutting
    /// down, busy past the timeout) or not in a state to serve (not migrated), as
    /// opposed to a query that failed on its own merits (a bug, bad data): the first
    /// is an outage to report as such, the second an internal error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. }
            | StoreError::NotMigrated { .. }
            | StoreError::AdoptionNeeded { .. }
            | StoreError::TooNew { .. } => true,
            StoreError::Query(error) => match error {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL: connection exceptions (08…) and operator intervention
                // (57P…: shutdown, crash); SQLite: busy or locked past the timeout.
                sqlx::Error::Database(error) => error.code().is_some_and(|code| {
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || ["5", "6", "261", "262", "517"].contains(&code.as_ref())
                }),
                _ => false,
            },
            StoreError::Migrate { .. }
            | StoreError::NothingToAdopt { .. }
            | StoreError::NotAdoptable { .. }
            | StoreError::Adopt { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Export { .. }
            | StoreError::NotBuiltIn { .. } => false,
        }
    }

    /// Whether the database refused a write because a unique key already exists
    /// (two operators creating the same account at once).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Query(sqlx::Error::Database(error)) => error.is_unique_violation(),
            _ => false,
        }
    }
}
