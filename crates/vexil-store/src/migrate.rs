//! The schema's migrations, embedded in the binary: `migrations/sqlite` and
//! `migrations/postgres`, numbered in lockstep.
//!
//! `Db::migrate` applies what is missing and says what it did; `Db::check_migrated`
//! is what every other command calls first, so an unmigrated database is a clear
//! "run `vexil migrate`", never a "no such table".
//!
//! A database that holds the runbook's tables and no vexil schema (an old console's)
//! is refused with "run `vexil migrate --adopt`" (`adopt.rs`).
//!
//! A database migrated by a newer vexil is refused with "upgrade vexil"; the library
//! accepts one (`Db::check_readable`): a schema only grows, so an older library keeps
//! reading during a rolling upgrade.

use std::collections::BTreeSet;

use sqlx::migrate::{MigrateError, Migrator};

use crate::db::{Db, Pool};
use crate::error::StoreError;

pub(crate) static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
pub(crate) static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// What `Db::migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The migrations applied by this run, as `(version, description)`, in order.
    pub applied: Vec<(i64, String)>,
    /// The schema version after the run.
    pub version: i64,
}

impl Db {
    /// Applies every migration the database does not have yet. Running it again
    /// applies nothing. A database migrated by a newer vexil is refused.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let before = self.applied_versions().await?;
        self.refuse_runbook_tables(&before).await?;
        let migrator = self.migrator();
        self.refuse_unknown(&before, migrator)?;
        let result = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => migrator.run(pool).await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => migrator.run(pool).await,
        };
        result.map_err(|source| match source {
            MigrateError::VersionMissing(version) => StoreError::TooNew {
                url: self.url().clone(),
                version,
            },
            source => StoreError::Migrate {
                url: self.url().clone(),
                source,
            },
        })?;
        let applied = migrator
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        Ok(MigrationReport {
            applied,
            version: latest(migrator),
        })
    }

    /// Fails unless the database has exactly the migrations this vexil knows.
    pub async fn check_migrated(&self) -> Result<(), StoreError> {
        let applied = self.applied_versions().await?;
        self.refuse_runbook_tables(&applied).await?;
        let migrator = self.migrator();
        self.refuse_unknown(&applied, migrator)?;
        let need = latest(migrator);
        if migrator.iter().any(|m| !applied.contains(&m.version)) {
            return Err(StoreError::NotMigrated {
                url: self.url().clone(),
                at: applied.last().copied().unwrap_or(0),
                need,
            });
        }
        Ok(())
    }

    /// For a reader (the library): fails unless every migration this vexil knows is
    /// applied, but accepts migrations it does not know. A schema only grows, so a
    /// process linking an older library keeps reading a database that a newer vexil
    /// migrated during a rolling upgrade.
    pub async fn check_readable(&self) -> Result<(), StoreError> {
        let applied = self.applied_versions().await?;
        self.refuse_runbook_tables(&applied).await?;
        let migrator = self.migrator();
        if migrator.iter().any(|m| !applied.contains(&m.version)) {
            return Err(StoreError::NotMigrated {
                url: self.url().clone(),
                at: applied.last().copied().unwrap_or(0),
                need: latest(migrator),
            });
        }
        Ok(())
    }

    fn migrator(&self) -> &'static Migrator {
        match self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => &SQLITE,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => &POSTGRES,
        }
    }

    /// A database with no vexil schema that holds the runbook's tables is an old
    /// console's: migrating it as a fresh one would fail on the first table, and it
    /// needs an adoption instead (`adopt.rs`), which the error names.
    async fn refuse_runbook_tables(&self, applied: &BTreeSet<i64>) -> Result<(), StoreError> {
        if !applied.is_empty() {
            return Ok(());
        }
        match self.runbook_tables().await? {
            Some(found) => Err(StoreError::AdoptionNeeded {
                url: self.url().clone(),
                found,
            }),
            None => Ok(()),
        }
    }

    fn refuse_unknown(
        &self,
        applied: &BTreeSet<i64>,
        migrator: &Migrator,
    ) -> Result<(), StoreError> {
        match applied
            .iter()
            .find(|v| !migrator.iter().any(|m| m.version == **v))
        {
            Some(&version) => Err(StoreError::TooNew {
                url: self.url().clone(),
                version,
            }),
            None => Ok(()),
        }
    }

    /// The versions recorded as applied; empty for a database never migrated.
    async fn applied_versions(&self) -> Result<BTreeSet<i64>, StoreError> {
        let exists: bool = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(pool)
                .await?
                    > 0
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(pool)
                    .await?
            }
        };
        if !exists {
            return Ok(BTreeSet::new());
        }
        let versions: Vec<i64> = crate::db::on_pool!(self, |pool, DB| {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(versions.into_iter().collect())
    }
}

fn latest(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}
