//! Adoption (docs/adopt.md): a console database that holds the runbook's
//! `console_feature_flags` and `console_audit_log`, with their history, becomes
//! vexil's in one transaction, keeping every row, its id and its values.
//!
//! The steps, in the transaction that holds the two tables (locked on PostgreSQL, the
//! write lock on SQLite):
//!
//! 1. The shape check (`adopt/shape.rs`): columns, types and values vexil can take,
//!    no other table under a name vexil needs, nothing outside the two tables built
//!    on them. Every refusal names the table, the column and the rows; a refused
//!    adoption writes nothing.
//! 2. The two tables are set aside under other names (their indexes and triggers go
//!    with them), and migration 1 runs exactly as on a fresh database: the migrator
//!    records it in `_sqlx_migrations` with its own checksum.
//! 3. The rows are copied in with their ids: the audit log verbatim; each old admin
//!    id becomes a disabled placeholder account of that id (`vexil_core::old_admin`),
//!    so `admin_id` keeps its value and its foreign key; each flag row with a
//!    `console.flag.adopt` audit row saying what vexil found, which the row's
//!    `audit_id` names (the flag table's triggers are held meanwhile, so the copy is
//!    not audited as direct SQL). vexil's own accounts are numbered from
//!    `accounts_from` on, above every old id, so no old id is ever a vexil account's.
//! 4. The set-aside tables are dropped, and migrations 2 onwards run as on a fresh
//!    database: the hash chain's migration takes the old rows as written before
//!    proofs existed, and the first seal covers them. `console_adoption` and
//!    `console_old_admins` record what was found.
//!
//! The tables are rebuilt rather than altered in place: SQLite cannot change a
//! column's type or constraints, and a table altered into shape would differ from a
//! fresh one in column order, defaults and constraint names. Rebuilt, the schema is
//! exactly a fresh database's (a test compares them), and vexil has one schema to
//! reason about.

#[cfg(feature = "postgres")]
mod postgres;
mod shape;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::migrate::{MigrateError, Migrator};

use crate::db::{Db, Pool};
use crate::error::StoreError;
use crate::migrate::MigrationReport;
use crate::url::DatabaseUrl;
use shape::{FoundTable, Rule, Types};

pub(crate) use shape::RUNBOOK_TABLES;

/// vexil's own accounts on an adopted database are numbered from the first multiple
/// of this above every old admin id: the old console keeps numbering its admins
/// while it runs beside vexil, and ids that far apart never meet.
const ACCOUNT_BLOCK: i64 = 1_000_000;

/// The runbook's tables found in a database that has no vexil schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookTables {
    /// Each table found and its rows.
    pub tables: Vec<(&'static str, i64)>,
}

impl fmt::Display for RunbookTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (table, rows)) in self.tables.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let plural = if *rows == 1 { "" } else { "s" };
            write!(f, "{sep}{table} with {rows} row{plural}")?;
        }
        Ok(())
    }
}

/// What an adoption did (or, rehearsed, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptionReport {
    /// Rows of `console_feature_flags` kept.
    pub flags: u64,
    /// Rows of `console_audit_log` kept.
    pub audit_rows: u64,
    /// The newest old audit row (0 when there was none).
    pub last_old_audit_id: i64,
    /// The old console's admin ids found in the audit log, kept as placeholders.
    pub old_admins: Vec<i64>,
    /// The first id of vexil's own accounts.
    pub accounts_from: i64,
    /// The migrations applied around the adopted tables.
    pub migrations: MigrationReport,
    /// `false` for a rehearsal (`dry_run`), rolled back at the end.
    pub committed: bool,
}

impl Db {
    /// The runbook's tables, when the database holds one or both of them and has no
    /// vexil schema: `vexil migrate` then refuses and asks for an adoption.
    pub async fn runbook_tables(&self) -> Result<Option<RunbookTables>, StoreError> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => found_on(&mut *pool.acquire().await?).await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => found_on(&mut *pool.acquire().await?).await,
        }
    }

    /// Adopts the runbook's tables (the module's doc says how), at `now`. With
    /// `dry_run`, does all of it and rolls it back: a rehearsal that proves the
    /// adoption would succeed. Nothing is changed when it fails.
    pub async fn adopt(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<AdoptionReport, StoreError> {
        let url = self.url();
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                let _gate = self.write_gate.clone().lock_owned().await;
                let mut conn = pool.acquire().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                let report = adopt_on(&mut *tx, url, now).await?;
                finish(tx, report, dry_run).await
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let result = async {
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let report = adopt_on(&mut *tx, url, now).await?;
                    finish(tx, report, dry_run).await
                }
                .await;
                // The migrator's lock is the session's, not the transaction's: a
                // failed step leaves it held on this pooled connection.
                let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
                    .execute(&mut *conn)
                    .await;
                result
            }
        }
    }
}

async fn finish<DB: sqlx::Database>(
    tx: sqlx::Transaction<'_, DB>,
    mut report: AdoptionReport,
    dry_run: bool,
) -> Result<AdoptionReport, StoreError> {
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
        report.committed = true;
    }
    Ok(report)
}

/// What adoption needs from a backend, on the connection of its transaction.
pub(crate) trait Adopter: Types {
    /// The backend's embedded migrations.
    fn migrator() -> &'static Migrator;
    /// Whether vexil's migrations table is there.
    async fn has_vexil_schema(&mut self) -> Result<bool, StoreError>;
    /// Each of the runbook's tables there, and what kind of relation it is.
    async fn found(&mut self) -> Result<Vec<(&'static str, String)>, StoreError>;
    async fn rows(&mut self, table: &str) -> Result<i64, StoreError>;
    /// Keeps other writers off the tables until the transaction ends.
    async fn lock(&mut self, tables: &[&'static str]) -> Result<(), StoreError>;
    async fn columns(&mut self, table: &str) -> Result<Vec<shape::FoundColumn>, StoreError>;
    /// The rules over `table`'s values, for the columns that `passed`.
    fn rules(table: &FoundTable, passed: &[&str]) -> Vec<Rule>;
    /// How many rows break `rule`, and how the first ones are named.
    async fn offenders(
        &mut self,
        table: &str,
        rule: &Rule,
    ) -> Result<(i64, Vec<String>), StoreError>;
    /// Refusals a rule in SQL cannot express (PostgreSQL: a text payload that is
    /// not JSON).
    async fn more_problems(
        &mut self,
        table: &FoundTable,
        passed: &[&str],
    ) -> Result<Vec<String>, StoreError>;
    /// What outside the two tables is built on `table`.
    async fn dependents(&mut self, table: &str) -> Result<Vec<String>, StoreError>;
    /// The relations among `names` that are there: (kind, name).
    async fn taken(&mut self, names: &[String]) -> Result<Vec<(String, String)>, StoreError>;
    /// Renames `table` out of the way, with whatever of it has a name of its own.
    async fn set_aside(&mut self, table: &str) -> Result<(), StoreError>;
    /// Runs the migrations, up to `to` or all.
    async fn migrate(&mut self, to: Option<i64>) -> Result<(), MigrateError>;
    async fn old_admin_ids(&mut self) -> Result<Vec<i64>, StoreError>;
    /// The placeholder accounts, under the old ids.
    async fn add_placeholders(&mut self, ids: &[i64], now: DateTime<Utc>)
    -> Result<(), StoreError>;
    /// Copies the audit log with its ids, new ids continuing after them; returns
    /// the rows and the newest id.
    async fn copy_audit_log(&mut self, table: &FoundTable) -> Result<(u64, i64), StoreError>;
    /// A `console.user.old_admin` row for each placeholder.
    async fn audit_placeholders(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Copies the flag rows, each with its `console.flag.adopt` row.
    async fn copy_flags(
        &mut self,
        table: &FoundTable,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// vexil's own accounts get ids from `from` on.
    async fn number_accounts_from(&mut self, from: i64) -> Result<(), StoreError>;
    async fn drop_set_aside(&mut self, table: &str) -> Result<(), StoreError>;
    /// Fills `console_adoption` and `console_old_admins`.
    async fn record(
        &mut self,
        now: DateTime<Utc>,
        last_old_audit_id: i64,
        accounts_from: i64,
        old_admins: &[i64],
    ) -> Result<(), StoreError>;
}

/// The name a runbook table is set aside under while vexil's is built.
pub(crate) fn aside(table: &str) -> String {
    format!("_vexil_adopt_{table}")
}

async fn found_on<C: Adopter>(conn: &mut C) -> Result<Option<RunbookTables>, StoreError> {
    if conn.has_vexil_schema().await? {
        return Ok(None);
    }
    let mut tables = Vec::new();
    for (table, kind) in conn.found().await? {
        let rows = if kind == "table" {
            conn.rows(table).await?
        } else {
            0
        };
        tables.push((table, rows));
    }
    Ok((!tables.is_empty()).then_some(RunbookTables { tables }))
}

async fn adopt_on<C: Adopter>(
    conn: &mut C,
    url: &DatabaseUrl,
    now: DateTime<Utc>,
) -> Result<AdoptionReport, StoreError> {
    let nothing = |reason: &str| StoreError::NothingToAdopt {
        url: url.clone(),
        reason: reason.to_owned(),
    };
    if conn.has_vexil_schema().await? {
        return Err(nothing(
            "it is vexil's already; `vexil migrate` applies what it lacks",
        ));
    }
    let found = conn.found().await?;
    if found.is_empty() {
        return Err(nothing(
            "it holds neither console_feature_flags nor console_audit_log (is DATABASE_URL the old console's database?)",
        ));
    }
    let names: Vec<&'static str> = found.iter().map(|(name, _)| *name).collect();
    let tables_found: Vec<&'static str> = found
        .iter()
        .filter(|(_, kind)| kind == "table")
        .map(|(name, _)| *name)
        .collect();
    let failed = |source: StoreError| StoreError::Adopt {
        url: url.clone(),
        source: Box::new(source),
    };
    conn.lock(&tables_found).await.map_err(failed)?;
    let (tables, problems) = check(conn, &found).await?;
    if !problems.is_empty() {
        return Err(StoreError::NotAdoptable {
            url: url.clone(),
            problems,
        });
    }
    let flags_table = tables.iter().find(|t| t.name == shape::FLAGS);
    let audit_table = tables.iter().find(|t| t.name == shape::AUDIT_LOG);
    let migrate_failed = |source| StoreError::Migrate {
        url: url.clone(),
        source,
    };

    for table in &names {
        conn.set_aside(table).await.map_err(failed)?;
    }
    conn.migrate(Some(1)).await.map_err(migrate_failed)?;
    let old_admins = match audit_table {
        Some(_) => conn.old_admin_ids().await?,
        None => Vec::new(),
    };
    let accounts_from =
        (old_admins.iter().max().copied().unwrap_or(0) / ACCOUNT_BLOCK + 1) * ACCOUNT_BLOCK;
    // The accounts before the rows that name them (a foreign key); their audit rows
    // after the old ones, whose ids come first.
    conn.add_placeholders(&old_admins, now)
        .await
        .map_err(failed)?;
    let (audit_rows, last_old_audit_id) = match audit_table {
        Some(table) => conn.copy_audit_log(table).await.map_err(failed)?,
        None => (0, 0),
    };
    conn.audit_placeholders(&old_admins, now)
        .await
        .map_err(failed)?;
    let flags = match flags_table {
        Some(table) => conn.copy_flags(table, now).await.map_err(failed)?,
        None => 0,
    };
    conn.number_accounts_from(accounts_from)
        .await
        .map_err(failed)?;
    // The flag table first: the old audit log may be what it refers to.
    for table in [shape::FLAGS, shape::AUDIT_LOG] {
        if names.contains(&table) {
            conn.drop_set_aside(table).await.map_err(failed)?;
        }
    }
    conn.migrate(None).await.map_err(migrate_failed)?;
    conn.record(now, last_old_audit_id, accounts_from, &old_admins)
        .await
        .map_err(failed)?;
    let migrator = C::migrator();
    Ok(AdoptionReport {
        flags,
        audit_rows,
        last_old_audit_id,
        old_admins,
        accounts_from,
        migrations: MigrationReport {
            applied: migrator
                .iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect(),
            version: migrator.iter().map(|m| m.version).max().unwrap_or(0),
        },
        committed: false,
    })
}

/// The shape check: every refusal, in the order an operator fixes them.
async fn check<C: Adopter>(
    conn: &mut C,
    found: &[(&'static str, String)],
) -> Result<(Vec<FoundTable>, Vec<String>), StoreError> {
    let mut problems = Vec::new();
    let mut tables = Vec::new();
    for (name, kind) in found {
        if kind != "table" {
            problems.push(format!("{name} is a {kind}, not a table"));
            continue;
        }
        let table = FoundTable {
            name,
            columns: conn.columns(name).await?,
        };
        let (mut column_problems, passed) = shape::judge_columns::<C>(&table);
        problems.append(&mut column_problems);
        // Rows are named by their key; without it, values wait for the next try.
        if shape::naming_columns(name)
            .iter()
            .all(|column| passed.contains(column))
        {
            for rule in C::rules(&table, &passed) {
                let (count, examples) = conn.offenders(name, &rule).await?;
                if count > 0 {
                    problems.push(shape::offending(&rule, count, &examples));
                }
            }
            problems.extend(conn.more_problems(&table, &passed).await?);
        }
        problems.extend(conn.dependents(name).await?);
        tables.push(table);
    }
    let mut vexil_names: Vec<String> = C::migrator()
        .iter()
        .flat_map(|m| shape::created_names(m.sql.as_str()))
        .filter(|name| !RUNBOOK_TABLES.contains(&name.as_str()))
        .collect();
    vexil_names.sort();
    vexil_names.dedup();
    for (kind, name) in conn.taken(&vexil_names).await? {
        problems.push(shape::taken(&kind, &name));
    }
    Ok((tables, problems))
}
