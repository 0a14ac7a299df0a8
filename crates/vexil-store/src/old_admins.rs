//! `console_adoption` and `console_old_admins`: what an adoption found (docs/adopt.md),
//! and the old console's admins, each held by a disabled placeholder account under
//! its old id, with the vexil account it is mapped to.
//!
//! A placeholder is made at adoption for every admin id of the old audit log, and
//! later (`WriteTx::add_old_admin`) for an old id the old console uses only after it:
//! until one exists, the audit log's foreign key refuses the old console's rows
//! under that id, rather than let them name anyone.

use chrono::{DateTime, Utc};
use vexil_core::old_admin::placeholder_name;

use crate::audit::NewAudit;
use crate::db::{Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
use crate::error::StoreError;

/// An adoption, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub adopted_at: DateTime<Utc>,
    /// Audit rows up to this id were written before vexil.
    pub last_old_audit_id: i64,
    /// vexil's own accounts are numbered from here; old admin ids are below.
    pub accounts_from: i64,
}

/// An old console admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldAdminRow {
    /// Its old id, which its placeholder account holds.
    pub admin_id: i64,
    /// The placeholder account's name.
    pub name: String,
    /// The vexil account it is mapped to, if any: (id, name).
    pub account: Option<(i64, String)>,
}

type RawOldAdmin = (i64, String, Option<i64>, Option<String>);

const SELECT_OLD_ADMINS: &str = "SELECT o.admin_id, p.name, o.account_id, m.name \
     FROM console_old_admins o JOIN users p ON p.id = o.admin_id \
     LEFT JOIN users m ON m.id = o.account_id";

impl Db {
    /// The adoption this database came from, if it did.
    pub async fn adoption(&self) -> Result<Option<Adoption>, StoreError> {
        let row: Option<(String, i64, i64)> = on_pool!(self, |pool, DB| {
            sqlx::query_as(
                "SELECT CAST(adopted_at AS TEXT), last_old_audit_id, accounts_from \
                 FROM console_adoption ORDER BY adopted_at LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        row.map(|(adopted_at, last_old_audit_id, accounts_from)| {
            Ok(Adoption {
                adopted_at: parse_timestamp(&adopted_at)?,
                last_old_audit_id,
                accounts_from,
            })
        })
        .transpose()
    }

    /// Every old console admin, by old id.
    pub async fn old_admins(&self) -> Result<Vec<OldAdminRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_OLD_ADMINS} ORDER BY o.admin_id"));
        let rows: Vec<RawOldAdmin> =
            on_pool!(self, |pool, DB| sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(old_admin_row).collect())
    }

    /// Old admin `admin_id`, if it has a placeholder.
    pub async fn old_admin(&self, admin_id: i64) -> Result<Option<OldAdminRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_OLD_ADMINS} WHERE o.admin_id = $1"));
        let row: Option<RawOldAdmin> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql)
                .bind(admin_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(old_admin_row))
    }
}

impl WriteTx {
    /// Makes the placeholder account of old admin `admin_id` (disabled, a password
    /// hash that never verifies), with its audit row.
    pub async fn add_old_admin(
        &mut self,
        admin_id: i64,
        now: DateTime<Utc>,
        audit: &NewAudit,
    ) -> Result<(), StoreError> {
        // The id is the old console's, below the identity's range: given, not drawn.
        let insert = if self.is_sqlite() {
            "INSERT INTO users (id, name, role, password_hash, disabled, created_at) \
             VALUES ($1, $2, 'readonly', '!', 1, $3)"
        } else {
            "INSERT INTO users (id, name, role, password_hash, disabled, created_at) \
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'readonly', '!', 1, $3)"
        };
        on_tx!(self, |tx, DB| {
            sqlx::query(insert)
                .bind(admin_id)
                .bind(placeholder_name(admin_id))
                .bind(<DB as Dialect>::timestamp(now))
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO console_old_admins (admin_id) VALUES ($1)")
                .bind(admin_id)
                .execute(&mut **tx)
                .await?;
        });
        self.append_audit(audit).await?;
        Ok(())
    }

    /// Maps old admin `admin_id` to the account `account_id`, with its audit row.
    pub async fn map_old_admin(
        &mut self,
        admin_id: i64,
        account_id: i64,
        audit: &NewAudit,
    ) -> Result<(), StoreError> {
        on_tx!(self, |tx, DB| {
            sqlx::query("UPDATE console_old_admins SET account_id = $1 WHERE admin_id = $2")
                .bind(account_id)
                .bind(admin_id)
                .execute(&mut **tx)
                .await?;
        });
        self.append_audit(audit).await?;
        Ok(())
    }
}

fn old_admin_row((admin_id, name, account_id, account): RawOldAdmin) -> OldAdminRow {
    OldAdminRow {
        admin_id,
        name,
        account: account_id.zip(account),
    }
}
