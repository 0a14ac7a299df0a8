//! A console session's life: `App::sign_in`, elevation's code check (`App::elevate`,
//! in `elevation.rs`) and
//! `App::sign_out`, each audited (`console.auth.*`). Sign-ins and elevations are
//! refused for a while after too many failures for one account; the failures are
//! counted in the audit log itself, so the limit holds across every server process.
//!
//! The limits: `MAX_FAILURES` (5) within `LOCK_WINDOW` (15 minutes). A refusal while
//! locked writes nothing, so a flood of attempts cannot flood the log.

use std::time::Duration;

use chrono::TimeDelta;
use secrecy::SecretString;
use serde_json::json;
use vexil_core::audit::{
    AUTH_ELEVATE, AUTH_ELEVATE_FAILED, AUTH_SIGN_IN, AUTH_SIGN_IN_FAILED, AUTH_SIGN_OUT,
    TARGET_USER,
};
use vexil_core::message::one_line;
use vexil_store::{AuditFilter, NewAudit};

use crate::app::{Actor, App};
use crate::elevation::TotpCode;
use crate::error::AppError;

/// Failed sign-ins (or elevations) for one account within `LOCK_WINDOW` that lock it
/// for the rest of the window (counted from the oldest of them).
pub const MAX_FAILURES: u32 = 5;
pub const LOCK_WINDOW: TimeDelta = TimeDelta::minutes(15);

/// An account name as recorded for a failed sign-in: what was typed, cut, since it
/// may be anything (the audit log shows it escaped).
const MAX_RECORDED_NAME: usize = 64;

/// A typed name as sign-in reads and records it: cut to `MAX_RECORDED_NAME`, and
/// with what free text may not hold escaped (`vexil_core::text`: a NUL would fail
/// PostgreSQL, a bidi control would reorder the audit page). No account name holds
/// such a character (names are `a-z`, `0-9` and `_`), so an escaped name is an
/// unknown one and gets the one vague answer: nothing says which names exist.
fn typed_name(name: &str) -> String {
    one_line(&name.chars().take(MAX_RECORDED_NAME).collect::<String>())
}

impl App {
    /// Checks `name`'s password and returns the account to act as. Every outcome is
    /// one audit row (`console.auth.sign_in` or `console.auth.sign_in_failed`, with
    /// `from`, the client's address) except a refusal while locked, which would only
    /// let a flood of attempts flood the log.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &SecretString,
        from: &str,
    ) -> Result<Actor, AppError> {
        let name = typed_name(name);
        if let Some(retry_after) = self.locked_for(AUTH_SIGN_IN_FAILED, &name).await? {
            return Err(AppError::SignInLocked { retry_after });
        }
        // Constant work for unknown accounts, and `false` for disabled ones.
        if !self.check_password(&name, password).await? {
            metrics::counter!("vexil_sign_in_failures_total").increment(1);
            self.audit_sign_in(AUTH_SIGN_IN_FAILED, None, &name, from)
                .await?;
            return Err(AppError::BadCredentials);
        }
        let actor = self.actor(&name).await?;
        self.audit_sign_in(AUTH_SIGN_IN, Some(actor.id()), &name, from)
            .await?;
        Ok(actor)
    }

    /// How long `name` stays locked out of signing in, if it is: what a door that
    /// refused an attempt for its own limits reads, so that it names one wait, the
    /// longest. It writes nothing.
    pub async fn sign_in_lock(&self, name: &str) -> Result<Option<Duration>, AppError> {
        self.locked_for(AUTH_SIGN_IN_FAILED, &typed_name(name))
            .await
    }

    /// Checks an elevation `code` for `actor` (`App::elevate`): refused while the
    /// account is locked, audited either way.
    pub(crate) async fn check_elevation_code(
        &self,
        actor: &Actor,
        code: &TotpCode,
        from: &str,
    ) -> Result<(), AppError> {
        if let Some(retry_after) = self.locked_for(AUTH_ELEVATE_FAILED, actor.name()).await? {
            return Err(AppError::ElevationLocked { retry_after });
        }
        match self.check_totp(actor, code).await {
            Ok(()) => {
                self.audit_sign_in(AUTH_ELEVATE, Some(actor.id()), actor.name(), from)
                    .await
            }
            Err(error @ (AppError::TotpInvalid | AppError::TotpReplayed)) => {
                metrics::counter!("vexil_totp_failures_total").increment(1);
                self.audit_sign_in(AUTH_ELEVATE_FAILED, Some(actor.id()), actor.name(), from)
                    .await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Records that `actor` ended their console session.
    pub async fn sign_out(&self, actor: &Actor, from: &str) -> Result<(), AppError> {
        self.audit_sign_in(AUTH_SIGN_OUT, Some(actor.id()), actor.name(), from)
            .await
    }

    /// How long `name` stays locked out of what `failed` records, if it has
    /// `MAX_FAILURES` such failures in the window.
    async fn locked_for(
        &self,
        failed: &'static str,
        name: &str,
    ) -> Result<Option<Duration>, AppError> {
        let now = self.clock.now();
        let filter = AuditFilter {
            action: Some(failed.to_owned()),
            account: Some(name.to_owned()),
            since: Some(now - LOCK_WINDOW),
            limit: MAX_FAILURES,
            ..AuditFilter::default()
        };
        let failures = self.db.audit_page(&filter).await?;
        if failures.len() < MAX_FAILURES as usize {
            return Ok(None);
        }
        // Newest first: the last one is the oldest of the `MAX_FAILURES` newest.
        let oldest = failures.last().map_or(now, |row| row.created_at);
        let until = oldest + LOCK_WINDOW;
        Ok(Some((until - now).to_std().unwrap_or_default()))
    }

    async fn audit_sign_in(
        &self,
        action: &'static str,
        admin_id: Option<i64>,
        name: &str,
        from: &str,
    ) -> Result<(), AppError> {
        let audit = NewAudit {
            created_at: self.clock.now(),
            admin_id,
            action,
            target_type: TARGET_USER,
            target_id: name.to_owned(),
            payload: json!({"account": name, "from": from}),
        };
        let mut tx = self.db.begin_write().await?;
        tx.append_audit(&audit).await?;
        tx.commit().await?;
        Ok(())
    }
}
