//! `users`: the accounts behind the role matrix.
//!
//! `UserRow`'s `Debug` hides the password hash and the TOTP secret. Changes run in a
//! `WriteTx` with their audit row; `Db::consume_totp_step` is one conditional UPDATE,
//! so a TOTP step is accepted once across processes (a counter, not audited).

use chrono::{DateTime, Utc};

use crate::audit::NewAudit;
use crate::db::{Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
use crate::error::StoreError;

/// An account as stored. The role is kept as text; `vexil-app` parses it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    /// The TOTP secret, encrypted; `None` until enrolled.
    pub totp_secret: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// Secrets stay out of logs even when a row is debug-printed.
impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("totp_enrolled", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// An account to create.
pub struct NewUser<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub password_hash: &'a str,
    pub created_at: DateTime<Utc>,
}

type RawRow = (
    i64,
    String,
    String,
    String,
    i32,
    Option<Vec<u8>>,
    Option<i64>,
    String,
);

const SELECT: &str = "SELECT id, name, role, password_hash, disabled, totp_secret, totp_last_step, \
                      CAST(created_at AS TEXT) FROM users";

impl Db {
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} WHERE name = $1"));
        let row: Option<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql).bind(name).fetch_optional(pool).await?
        });
        row.map(user_row).transpose()
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY name"));
        let rows: Vec<RawRow> =
            on_pool!(self, |pool, DB| sqlx::query_as(sql).fetch_all(pool).await?);
        rows.into_iter().map(user_row).collect()
    }
}

impl WriteTx {
    /// Creates an account, with its audit row; returns its id.
    pub async fn insert_user(
        &mut self,
        user: &NewUser<'_>,
        audit: &NewAudit,
    ) -> Result<i64, StoreError> {
        let id = on_tx!(self, |tx, DB| {
            sqlx::query_scalar(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(user.name)
            .bind(user.role)
            .bind(user.password_hash)
            .bind(<DB as Dialect>::timestamp(user.created_at))
            .fetch_one(&mut **tx)
            .await?
        });
        self.append_audit(audit).await?;
        Ok(id)
    }

    /// Changes an account's role, with its audit row.
    pub async fn set_role(
        &mut self,
        user_id: i64,
        role: &str,
        audit: &NewAudit,
    ) -> Result<(), StoreError> {
        on_tx!(self, |tx, DB| {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role)
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
        });
        self.append_audit(audit).await?;
        Ok(())
    }

    /// Disables an account for good (it keeps its rows in the audit log), with its
    /// audit row.
    pub async fn disable_user(&mut self, user_id: i64, audit: &NewAudit) -> Result<(), StoreError> {
        on_tx!(self, |tx, DB| {
            sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
        });
        self.append_audit(audit).await?;
        Ok(())
    }
}

fn user_row(raw: RawRow) -> Result<UserRow, StoreError> {
    let (id, name, role, password_hash, disabled, totp_secret, totp_last_step, created_at) = raw;
    Ok(UserRow {
        id,
        name,
        role,
        password_hash,
        disabled: disabled == 1,
        totp_secret,
        totp_last_step,
        created_at: parse_timestamp(&created_at)?,
    })
}

impl WriteTx {
    /// Stores an account's (encrypted) TOTP secret, resetting the replay guard, with
    /// its audit row.
    pub async fn set_totp_secret(
        &mut self,
        user_id: i64,
        secret: &[u8],
        audit: &NewAudit,
    ) -> Result<(), StoreError> {
        on_tx!(self, |tx, DB| {
            sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = NULL WHERE id = $2")
                .bind(secret)
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
        });
        self.append_audit(audit).await?;
        Ok(())
    }
}

impl Db {
    /// Records that the TOTP code of time step `step` was used, if no code of that step
    /// or a later one was used before. `false` means a replay: one conditional UPDATE,
    /// so two processes given the same code cannot both accept it.
    pub async fn consume_totp_step(&self, user_id: i64, step: i64) -> Result<bool, StoreError> {
        let rows = on_pool!(self, |pool, DB| {
            sqlx::query(
                "UPDATE users SET totp_last_step = $1 \
                 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(rows == 1)
    }
}
