//! A console session's life: `App::sign_in`, elevation's code check (`App::elevate`,
//! in `elevation.rs`) and `App::sign_out`, each audited (`console.auth.*`).
//!
//! Failed sign-ins lock where they come from, not whom they aim at (docs/roles.md,
//! "Sign-in limits"):
//!
//! - `MAX_FAILURES` (5) failures for one account from one client network (an IPv6
//!   /64) within `LOCK_WINDOW` (15 minutes) lock that network out of that account
//!   for the rest of the window. A stranger who guesses wrong locks out only
//!   themselves.
//! - `ACCOUNT_FAILURES` (20) failures for one account from anywhere within the window
//!   mean it is under attack from many places: a password alone no longer signs it
//!   in, a code from its authenticator is asked as well, which the attacker does not
//!   have. An account without TOTP cannot sign in until the failures age out (enrol
//!   it to stay reachable); a right password without a right code is answered and
//!   recorded as a wrong one.
//!
//! Failures for accounts that exist are counted in the audit log itself, so the
//! locks hold across every server process. Failures for names that are no account
//! are counted in memory (`UnknownNames`) the same way, so that the answers do not
//! tell which names exist, and written as one audit row per minute per process
//! (`console.auth.sign_in_failed_unknown`): a flood of made-up names cannot flood
//! the log. A refusal while locked writes nothing.
//!
//! Elevation codes are another matter: only a signed-in session can send one, so
//! `MAX_FAILURES` wrong codes for an account lock its elevation for the window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::SecretString;
use serde_json::json;
use vexil_core::audit::{
    AUTH_ELEVATE, AUTH_ELEVATE_FAILED, AUTH_SIGN_IN, AUTH_SIGN_IN_FAILED,
    AUTH_SIGN_IN_FAILED_UNKNOWN, AUTH_SIGN_OUT, TARGET_USER,
};
use vexil_core::client_network::network_of;
use vexil_core::message::one_line;
use vexil_store::{AuditFilter, NewAudit, UserRow};

use crate::app::{Actor, App};
use crate::elevation::TotpCode;
use crate::error::AppError;

/// Failed sign-ins for one account from one client network within `LOCK_WINDOW`
/// that lock that network out of it for the rest of the window (counted from the
/// oldest of them); also the wrong elevation codes that lock an account's elevation.
pub const MAX_FAILURES: u32 = 5;
/// Failed sign-ins for one account from anywhere within `LOCK_WINDOW` after which a
/// password alone no longer signs it in.
pub const ACCOUNT_FAILURES: u32 = 20;
pub const LOCK_WINDOW: TimeDelta = TimeDelta::minutes(15);

/// The newest failures of an account read to judge its locks: enough to find one
/// network's `MAX_FAILURES` among many networks' failures.
const SCAN: u32 = 200;

/// An account name as recorded for a failed sign-in: what was typed, cut, since it
/// may be anything (the audit log shows it escaped).
const MAX_RECORDED_NAME: usize = 64;

/// What the failures recorded against an account say about an attempt from one
/// network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Open,
    /// Under attack from many places: a code is needed with the password; the wait
    /// is until the account's failures fall below `ACCOUNT_FAILURES` again.
    NeedsCode(Duration),
    /// This network may not try this account for this long.
    Locked(Duration),
}

/// One failure as the locks see it: when, and from which network.
type Failure = (DateTime<Utc>, Option<IpAddr>);

/// Judges an attempt from `from` against `failures` (any order) at `now`.
fn judge(failures: &[Failure], from: Option<IpAddr>, now: DateTime<Utc>) -> Lock {
    let recent = |keep: &dyn Fn(&Failure) -> bool| {
        let mut times: Vec<DateTime<Utc>> = failures
            .iter()
            .filter(|f| f.0 > now - LOCK_WINDOW && keep(f))
            .map(|f| f.0)
            .collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        times
    };
    // Until the oldest of the `n` newest failures leaves the window.
    let wait = |times: &[DateTime<Utc>], n: u32| {
        let oldest = times[n as usize - 1];
        (oldest + LOCK_WINDOW - now).to_std().unwrap_or_default()
    };
    let here = recent(&|f| f.1 == from);
    if here.len() >= MAX_FAILURES as usize {
        return Lock::Locked(wait(&here, MAX_FAILURES));
    }
    let everywhere = recent(&|_| true);
    if everywhere.len() >= ACCOUNT_FAILURES as usize {
        return Lock::NeedsCode(wait(&everywhere, ACCOUNT_FAILURES));
    }
    Lock::Open
}

/// Failed sign-ins for names that are no account, in this process: judged as the
/// audit log's are judged for accounts, and summed into one audit row per minute.
#[derive(Debug, Default)]
pub(crate) struct UnknownNames {
    failures: HashMap<String, Vec<Failure>>,
    /// Since the last summary row.
    attempts: u64,
    names: Vec<String>,
    from: Vec<String>,
    since: Option<DateTime<Utc>>,
}

/// Names and addresses a summary row lists (the count says how many attempts).
const SUMMARY_LISTS: usize = 20;
/// Names whose failures are kept in memory; beyond, the oldest are forgotten.
const UNKNOWN_NAMES_KEPT: usize = 10_000;

impl UnknownNames {
    fn failures(&self, name: &str) -> Vec<Failure> {
        self.failures.get(name).cloned().unwrap_or_default()
    }

    fn record(&mut self, name: &str, from: &str, now: DateTime<Utc>) {
        if self.failures.len() >= UNKNOWN_NAMES_KEPT && !self.failures.contains_key(name) {
            self.forget_before(now - LOCK_WINDOW);
            if self.failures.len() >= UNKNOWN_NAMES_KEPT {
                // Every kept name failed within the window: the one whose last
                // failure is oldest goes.
                let oldest = self
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.iter().map(|f| f.0).max())
                    .map(|(name, _)| name.clone());
                if let Some(oldest) = oldest {
                    self.failures.remove(&oldest);
                }
            }
        }
        let failures = self.failures.entry(name.to_owned()).or_default();
        failures.retain(|f| f.0 > now - LOCK_WINDOW);
        failures.push((now, network_of(from)));
        self.attempts += 1;
        self.since.get_or_insert(now);
        for (list, item) in [(&mut self.names, name), (&mut self.from, from)] {
            if list.len() < SUMMARY_LISTS && !list.iter().any(|seen| seen == item) {
                list.push(item.to_owned());
            }
        }
    }

    /// Takes back a summary whose row could not be written.
    fn restore(&mut self, summary: &serde_json::Value) {
        self.attempts += summary["attempts"].as_u64().unwrap_or(0);
        let since = summary["since"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|s| s.with_timezone(&Utc));
        self.since = match (self.since, since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (list, field) in [(&mut self.names, "accounts"), (&mut self.from, "from")] {
            for item in summary[field].as_array().into_iter().flatten() {
                if let Some(item) = item.as_str()
                    && list.len() < SUMMARY_LISTS
                    && !list.iter().any(|seen| seen == item)
                {
                    list.push(item.to_owned());
                }
            }
        }
    }

    fn forget_before(&mut self, before: DateTime<Utc>) {
        self.failures.retain(|_, failures| {
            failures.retain(|f| f.0 > before);
            !failures.is_empty()
        });
    }

    /// The summary row since the last one, if there were attempts; starts anew.
    fn summary(&mut self, now: DateTime<Utc>) -> Option<serde_json::Value> {
        self.forget_before(now - LOCK_WINDOW);
        let since = self.since.take()?;
        let summary = json!({
            "attempts": self.attempts,
            "accounts": std::mem::take(&mut self.names),
            "from": std::mem::take(&mut self.from),
            "since": since.to_rfc3339(),
        });
        self.attempts = 0;
        Some(summary)
    }
}

/// A password check's outcome, for the use cases that record it.
pub(crate) enum Checked {
    Right,
    Wrong,
    NoAccount,
}

/// A typed name as sign-in reads and records it: cut to `MAX_RECORDED_NAME`, and
/// with what free text may not hold escaped (`vexil_core::text`: a NUL would fail
/// PostgreSQL, a bidi control would reorder the audit page). No account name holds
/// such a character (names are `a-z`, `0-9` and `_`), so an escaped name is an
/// unknown one and gets the one vague answer: nothing says which names exist.
fn typed_name(name: &str) -> String {
    one_line(&name.chars().take(MAX_RECORDED_NAME).collect::<String>())
}

impl App {
    /// Checks `name`'s password (and, for an account under attack, `code`) and
    /// returns the account to act as. Every outcome is one audit row
    /// (`console.auth.sign_in` or `console.auth.sign_in_failed`, with `from`, the
    /// client's address) except a refusal while locked or busy, a refusal for want
    /// of a code, and a failure for a name that is no account (summed in memory:
    /// `App::summarize_unknown_sign_ins`).
    pub async fn sign_in(
        &self,
        name: &str,
        password: &SecretString,
        code: Option<&TotpCode>,
        from: &str,
    ) -> Result<Actor, AppError> {
        let name = typed_name(name);
        let user = self.db.user_by_name(&name).await?;
        let lock = self.sign_in_lock_state(&name, user.is_some(), from).await?;
        let code = match lock {
            Lock::Locked(retry_after) => return Err(AppError::SignInLocked { retry_after }),
            Lock::NeedsCode(_) => Some(code.ok_or(AppError::SignInNeedsCode)?),
            Lock::Open => None,
        };
        let checked = self.check_account_password(user, password).await?;
        // Under attack, a right password without a right code is one more failure,
        // answered and recorded as a wrong password is: nothing tells the attacker
        // which of the two was wrong, nor whether the account has TOTP at all (one
        // without cannot sign in until the attack stops).
        let checked = match (checked, code) {
            (Checked::Right, Some(code)) if !self.code_is_right(&name, code).await => {
                Checked::Wrong
            }
            (checked, _) => checked,
        };
        if !matches!(checked, Checked::Right) {
            return Err(self.sign_in_failed(&name, from, checked, None).await);
        }
        let actor = self.actor(&name).await?;
        self.audit_sign_in(AUTH_SIGN_IN, Some(actor.id()), &name, from, None)
            .await?;
        Ok(actor)
    }

    /// Whether `code` is right for `name`'s TOTP (`false` without TOTP, or when its
    /// secret cannot be read: that is logged, not answered differently).
    async fn code_is_right(&self, name: &str, code: &TotpCode) -> bool {
        let Ok(actor) = self.actor(name).await else {
            return false;
        };
        if !self.has_totp(name).await.unwrap_or(false) {
            return false;
        }
        match self.check_totp(&actor, code).await {
            Ok(()) => true,
            Err(AppError::TotpInvalid | AppError::TotpReplayed) => false,
            Err(error) => {
                tracing::warn!(account = %name, %error, "could not check a sign-in code");
                false
            }
        }
    }

    /// Checks `actor`'s password before a step that needs it (TOTP set-up), with
    /// the sign-in locks: a wrong one is a failed sign-in, recorded and counted as
    /// one (`"during"` says where), so that a stolen session cannot guess the
    /// password faster than the sign-in page lets anyone.
    pub async fn recheck_password(
        &self,
        actor: &Actor,
        password: &SecretString,
        during: &'static str,
        from: &str,
    ) -> Result<(), AppError> {
        let user = self.db.user_by_name(actor.name()).await?;
        match self
            .sign_in_lock_state(actor.name(), user.is_some(), from)
            .await?
        {
            Lock::Locked(retry_after) | Lock::NeedsCode(retry_after) => {
                return Err(AppError::SignInLocked { retry_after });
            }
            Lock::Open => {}
        }
        match self.check_account_password(user, password).await? {
            Checked::Right => Ok(()),
            checked => Err(self
                .sign_in_failed(actor.name(), from, checked, Some(during))
                .await),
        }
    }

    /// How long an attempt at `name` from `from` would be refused, if it would: what
    /// a door that refused an attempt for its own limits reads, so that it names one
    /// wait, the longest. It writes nothing.
    pub async fn sign_in_lock(&self, name: &str, from: &str) -> Result<Option<Duration>, AppError> {
        let name = typed_name(name);
        let exists = self.db.user_by_name(&name).await?.is_some();
        Ok(match self.sign_in_lock_state(&name, exists, from).await? {
            Lock::Locked(wait) => Some(wait),
            Lock::NeedsCode(_) | Lock::Open => None,
        })
    }

    /// Writes the summary of failed sign-ins for names that are no account since the
    /// last one, if there were any (the server's housekeeping calls this every
    /// minute, and once more when it stops).
    pub async fn summarize_unknown_sign_ins(&self) -> Result<(), AppError> {
        let now = self.clock.now();
        let summary = self.unknown_names().summary(now);
        let Some(payload) = summary else {
            return Ok(());
        };
        let audit = NewAudit {
            created_at: now,
            admin_id: None,
            action: AUTH_SIGN_IN_FAILED_UNKNOWN,
            target_type: TARGET_USER,
            target_id: String::new(),
            payload,
        };
        let written = async {
            let mut tx = self.db.begin_write().await?;
            tx.append_audit(&audit).await?;
            tx.commit().await
        };
        if let Err(error) = written.await {
            // Kept for the next minute's row rather than lost.
            self.unknown_names().restore(&audit.payload);
            return Err(error.into());
        }
        Ok(())
    }

    /// Checks an elevation `code` for `actor` (`App::elevate`): refused while the
    /// account's elevation is locked, audited either way.
    pub(crate) async fn check_elevation_code(
        &self,
        actor: &Actor,
        code: &TotpCode,
        from: &str,
    ) -> Result<(), AppError> {
        if let Some(retry_after) = self.elevation_locked_for(actor.name()).await? {
            return Err(AppError::ElevationLocked { retry_after });
        }
        match self.check_totp(actor, code).await {
            Ok(()) => {
                self.audit_sign_in(AUTH_ELEVATE, Some(actor.id()), actor.name(), from, None)
                    .await
            }
            Err(error @ (AppError::TotpInvalid | AppError::TotpReplayed)) => {
                metrics::counter!("vexil_totp_failures_total").increment(1);
                self.audit_sign_in(
                    AUTH_ELEVATE_FAILED,
                    Some(actor.id()),
                    actor.name(),
                    from,
                    None,
                )
                .await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Records that `actor` ended their console session.
    pub async fn sign_out(&self, actor: &Actor, from: &str) -> Result<(), AppError> {
        self.audit_sign_in(AUTH_SIGN_OUT, Some(actor.id()), actor.name(), from, None)
            .await
    }

    /// Whether `password` is `user`'s, and whether there is an account at all (the
    /// same argon2 work either way).
    pub(crate) async fn check_account_password(
        &self,
        user: Option<UserRow>,
        password: &SecretString,
    ) -> Result<Checked, AppError> {
        let hash = user.as_ref().map_or_else(
            || crate::password::dummy_hash().to_owned(),
            |user| user.password_hash.clone(),
        );
        // argon2 is ~20 ms of CPU by design: on threads of its own (`password.rs`),
        // so that other requests are not held up, and a bounded number at once.
        let matches = self.passwords.verify(hash, password.clone()).await?;
        Ok(match user {
            None => Checked::NoAccount,
            Some(user) if matches && !user.disabled => Checked::Right,
            Some(_) => Checked::Wrong,
        })
    }

    /// Records a failed sign-in (in the audit log for an account, in memory for a
    /// name that is none) and returns the refusal to answer with. A failure that
    /// cannot be recorded is an error: an unrecorded guess would not count.
    async fn sign_in_failed(
        &self,
        name: &str,
        from: &str,
        checked: Checked,
        during: Option<&'static str>,
    ) -> AppError {
        metrics::counter!("vexil_sign_in_failures_total").increment(1);
        if let Checked::NoAccount = checked {
            self.unknown_names().record(name, from, self.clock.now());
            // The database work an account's failure costs (a write transaction),
            // without a row: timing does not tell which names exist either.
            let work = async {
                let tx = self.db.begin_write().await?;
                tx.commit().await
            };
            return match work.await {
                Ok(()) => AppError::BadCredentials,
                Err(error) => error.into(),
            };
        }
        match self
            .audit_sign_in(AUTH_SIGN_IN_FAILED, None, name, from, during)
            .await
        {
            Ok(()) => AppError::BadCredentials,
            Err(error) => error,
        }
    }

    /// The lock on an attempt at `name` (an account if `exists`) from `from`.
    async fn sign_in_lock_state(
        &self,
        name: &str,
        exists: bool,
        from: &str,
    ) -> Result<Lock, AppError> {
        let now = self.clock.now();
        // The same query for a name that is no account (it finds nothing), so
        // that timing does not tell the two apart.
        let recorded = self
            .recorded_failures(AUTH_SIGN_IN_FAILED, name, SCAN)
            .await?;
        let failures = if exists {
            recorded
        } else {
            self.unknown_names().failures(name)
        };
        Ok(judge(&failures, network_of(from), now))
    }

    /// How long `name`'s elevation stays locked, if it has `MAX_FAILURES` wrong
    /// codes in the window (from anywhere: only its own sessions can send one).
    async fn elevation_locked_for(&self, name: &str) -> Result<Option<Duration>, AppError> {
        let failures = self
            .recorded_failures(AUTH_ELEVATE_FAILED, name, MAX_FAILURES)
            .await?;
        let now = self.clock.now();
        Ok(match judge(&failures, None, now) {
            Lock::Locked(wait) => Some(wait),
            _ => None,
        })
    }

    /// The newest `limit` rows of `failed` for `name` within the window, as the locks
    /// see them. Elevation failures are judged as if from one network.
    async fn recorded_failures(
        &self,
        failed: &'static str,
        name: &str,
        limit: u32,
    ) -> Result<Vec<Failure>, AppError> {
        let now = self.clock.now();
        let filter = AuditFilter {
            action: Some(failed.to_owned()),
            account: Some(name.to_owned()),
            since: Some(now - LOCK_WINDOW),
            limit,
            ..AuditFilter::default()
        };
        let rows = self.db.audit_page(&filter).await?;
        let by_network = failed == AUTH_SIGN_IN_FAILED;
        Ok(rows
            .into_iter()
            .map(|row| {
                let from = row.payload["from"].as_str().and_then(network_of);
                (row.created_at, if by_network { from } else { None })
            })
            .collect())
    }

    fn unknown_names(&self) -> std::sync::MutexGuard<'_, UnknownNames> {
        self.unknown_names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn audit_sign_in(
        &self,
        action: &'static str,
        admin_id: Option<i64>,
        name: &str,
        from: &str,
        during: Option<&'static str>,
    ) -> Result<(), AppError> {
        let mut payload = json!({"account": name, "from": from});
        if let Some(during) = during {
            payload["during"] = json!(during);
        }
        let audit = NewAudit {
            created_at: self.clock.now(),
            admin_id,
            action,
            target_type: TARGET_USER,
            target_id: name.to_owned(),
            payload,
        };
        let mut tx = self.db.begin_write().await?;
        tx.append_audit(&audit).await?;
        tx.commit().await?;
        Ok(())
    }
}
