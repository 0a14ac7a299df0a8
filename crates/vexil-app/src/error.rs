//! `AppError`: why a use case refused or failed, precise enough for the console, the
//! API and the CLI to each say it their way (and map it to a status or exit code once).

use chrono::{DateTime, Utc};
use vexil_core::audit::ReasonError;
use vexil_core::message::one_line;
use vexil_core::promotion::{ConfirmationError, MarkError, TransitionError};
use vexil_core::{Denied, EnvError, Source};
use vexil_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(
        "unknown flag '{}': it is not declared in the flags file",
        one_line(key)
    )]
    UnknownFlag { key: String },
    #[error(transparent)]
    UnknownEnv(#[from] EnvError),
    #[error("unknown account '{}'", one_line(name))]
    UnknownAccount { name: String },
    #[error("account '{}' is disabled", one_line(name))]
    Disabled { name: String },
    #[error(
        "account '{}' already has role {role}; nothing was changed",
        one_line(name)
    )]
    SameRole {
        name: String,
        role: vexil_core::Role,
    },
    #[error("account '{}' already exists", one_line(name))]
    AccountExists { name: String },
    /// An old admin id asked of a database vexil did not adopt (docs/adopt.md).
    #[error(
        "this database was not adopted from an old console (docs/adopt.md): it has no old admin ids to map"
    )]
    NotAdopted,
    #[error(
        "{id} is not an old console admin's id: those are from 1 to {}, below vexil's own accounts",
        accounts_from - 1
    )]
    NotAnOldAdmin { id: i64, accounts_from: i64 },
    /// A placeholder account named where a vexil account is needed.
    #[error(
        "account '{}' holds old console admin #{id}: map to the vexil account of the person instead",
        one_line(name)
    )]
    OldAdminAccount { name: String, id: i64 },
    #[error(
        "old console admin #{id} is mapped to '{}' already; nothing was changed",
        one_line(name)
    )]
    AlreadyMapped { id: i64, name: String },
    #[error("invalid account name: {}", error.reason())]
    InvalidAccountName { error: vexil_core::FlagKeyError },
    #[error("the password is too short: at least {min} characters")]
    WeakPassword { min: usize },
    #[error("cannot hash the password")]
    PasswordHash(#[source] argon2::password_hash::Error),
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The value the operator saw is no longer the value in force: nothing was written.
    #[error(
        "conflict: {flag} in {env} is {current} now ({source_name}{by}), not {expected}; nothing was changed",
        current = on_off(*.current),
        expected = on_off(*.expected),
        source_name = .current_source.as_str(),
        by = changed_by(.updated_by.as_deref(), *.updated_at),
    )]
    Conflict {
        flag: String,
        env: String,
        expected: bool,
        current: bool,
        current_source: Source,
        updated_by: Option<String>,
        updated_at: Option<DateTime<Utc>>,
    },
    /// A row an import was to write changed after its plan read it (another writer):
    /// the whole import was rolled back.
    #[error(
        "the {env} row of {flag} changed while importing; nothing was written: run the import again"
    )]
    ImportChanged { flag: String, env: String },
    /// The flip asks for the value already in force: nothing was written.
    #[error("{flag} in {env} is already {}; nothing was changed", on_off(*.value))]
    NoChange {
        flag: String,
        env: String,
        value: bool,
    },
    #[error("account '{name}' has no TOTP enrolled: run `vexil user totp {name}`")]
    TotpNotEnrolled { name: String },
    #[error(
        "account '{}' has TOTP enrolled already; to replace it, an operator runs `vexil user totp {}`",
        one_line(name),
        one_line(name)
    )]
    TotpAlreadyEnrolled { name: String },
    #[error("the TOTP code is wrong or expired")]
    TotpInvalid,
    #[error("the TOTP code was already used: wait for the next one")]
    TotpReplayed,
    #[error(
        "the TOTP secret of '{name}' cannot be read with this secret key (was VEXIL_SECRET_KEY changed?): re-enrol with `vexil user totp {name}`"
    )]
    TotpUnreadable { name: String },
    /// The TOTP library refused a secret or a URI vexil made.
    #[error("TOTP failed")]
    Totp(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "no secret key to encrypt TOTP secrets: set VEXIL_SECRET_KEY to 64 hexadecimal characters"
    )]
    NoSecretKey,
    #[error("VEXIL_SECRET_KEY must be 64 hexadecimal characters (32 bytes)")]
    BadSecretKey,
    /// One message for a wrong password, an unknown account and a disabled one.
    #[error("wrong account name or password")]
    BadCredentials,
    #[error("too many failed sign-ins for this account; try again in {} s", retry_after.as_secs().max(1))]
    SignInLocked { retry_after: std::time::Duration },
    /// The account has had many failed sign-ins from many places lately: a code from
    /// its authenticator is needed with the password (`sign_in.rs`).
    #[error(
        "this account needs a TOTP code with its password for now: it has had many failed sign-ins"
    )]
    SignInNeedsCode,
    #[error("too many wrong TOTP codes for this account; try again in {} s", retry_after.as_secs().max(1))]
    ElevationLocked { retry_after: std::time::Duration },
    /// Every password-checking thread is busy and its queue full (`password.rs`):
    /// nothing was checked or recorded.
    #[error("the server is busy checking other passwords; try again in {} s", retry_after.as_secs().max(1))]
    Busy { retry_after: std::time::Duration },
    #[error("no promotion {id}")]
    UnknownPromotion { id: i64 },
    #[error("cannot mark {flag} active for prod: {reason}")]
    CannotMark { flag: String, reason: MarkError },
    /// The state machine refused the step; nothing was changed (but an expiry that
    /// was due has been written).
    #[error("promotion {id} of {flag}: {error}")]
    Promotion {
        id: i64,
        flag: String,
        error: TransitionError,
    },
    #[error(transparent)]
    Confirmation(#[from] ConfirmationError),
    #[error(transparent)]
    Reason(#[from] ReasonError),
    /// Free text (a filter, a name) holding a character it may not hold
    /// (`vexil_core::text`): refused before it reaches the database.
    #[error(transparent)]
    InvalidText(#[from] vexil_core::TextError),
    /// A reconciling flip that cannot be written; nothing was changed.
    #[error("cannot reconcile {flag} in {env}: {why}; nothing was changed")]
    ReconcileRefused {
        flag: String,
        env: String,
        why: String,
    },
    #[error("no audit row {id}")]
    UnknownAuditRow { id: i64 },
    #[error("audit row {id} is not a flag change: only a flip has propagation receipts")]
    NotAFlagChange { id: i64 },
    #[error("unknown API token {id}")]
    UnknownToken { id: i64 },
    #[error("API token {id} is already revoked")]
    TokenRevoked { id: i64 },
    /// A presented token that is unknown, revoked, or whose account cannot act. One
    /// message for all, so a caller learns nothing about which.
    #[error("invalid or revoked API token")]
    BadToken,
    #[error("unknown client key {id}")]
    UnknownClientKey { id: i64 },
    #[error("client key {id} is already revoked")]
    ClientKeyRevoked { id: i64 },
    /// A presented client key that is unknown or revoked (one message for both).
    #[error("invalid or revoked client key")]
    BadClientKey,
    #[error(transparent)]
    InvalidAppName(#[from] vexil_core::AppNameError),
    /// A process's report that does not fit the flags or its key; nothing was recorded.
    #[error("report refused: {0}")]
    Report(#[from] vexil_core::sdk::ReportError),
    #[error("the system's random source failed")]
    Random(#[source] getrandom::Error),
    /// An audit export file that cannot be read (`vexil audit verify --file`).
    #[error(transparent)]
    BadExport(#[from] crate::audit_integrity::BadExport),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What kind of refusal or failure an error is: the one classification of
/// [`AppError`], which each door maps once to its own answer (a console page, an API
/// code, a CLI exit status). The match in [`AppError::kind`] has no catch-all, so a
/// new variant does not compile until it is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A name, value or field that does not parse or is out of bounds.
    Invalid,
    /// An env that is not configured.
    UnknownEnv,
    /// No such flag, account, promotion, audit row, token or client key.
    NotFound,
    /// No credentials, or ones that are wrong, unknown or revoked.
    Unauthenticated,
    /// The role may not do this, or the account may not act; elevation would not help.
    Forbidden,
    /// The role suffices, but the action needs TOTP elevation (or an enrolled TOTP).
    ElevationRequired,
    /// A TOTP code that is wrong, expired or already used, or a self-service
    /// enrolment that would replace an enrolled secret.
    TotpRejected,
    /// Too many failures for this account: try again later.
    RateLimited,
    /// The value the operator saw is no longer the value in force.
    Conflict,
    /// The change asked for is already so.
    NoChange,
    /// The thing is not in a state that allows this step (a promotion, a revoked key, a
    /// pair with nothing to reconcile, an existing account).
    InvalidState,
    /// A high-risk promote without its typed phrase.
    ConfirmationRequired,
    /// The database does not answer.
    Unavailable,
    /// Anything else: a fault on vexil's side or in its set-up.
    Internal,
}

impl AppError {
    /// This error's kind, for the doors' one mapping each.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            AppError::UnknownEnv(_) => K::UnknownEnv,
            AppError::UnknownFlag { .. }
            | AppError::UnknownAccount { .. }
            | AppError::UnknownPromotion { .. }
            | AppError::UnknownAuditRow { .. }
            | AppError::UnknownToken { .. }
            | AppError::UnknownClientKey { .. } => K::NotFound,
            AppError::InvalidAccountName { .. }
            | AppError::WeakPassword { .. }
            | AppError::Reason(_)
            | AppError::InvalidText(_)
            | AppError::NotAFlagChange { .. }
            | AppError::InvalidAppName(_)
            | AppError::Report(_)
            | AppError::BadExport(_)
            | AppError::NotAdopted
            | AppError::NotAnOldAdmin { .. }
            | AppError::OldAdminAccount { .. }
            | AppError::Promotion {
                error: TransitionError::ReasonRequired,
                ..
            } => K::Invalid,
            AppError::BadCredentials
            | AppError::SignInNeedsCode
            | AppError::BadToken
            | AppError::BadClientKey => K::Unauthenticated,
            AppError::Denied(Denied::Forbidden { .. })
            | AppError::Disabled { .. }
            | AppError::Promotion {
                error: TransitionError::SameApprover { .. },
                ..
            } => K::Forbidden,
            AppError::Denied(Denied::ElevationRequired { .. })
            | AppError::TotpNotEnrolled { .. } => K::ElevationRequired,
            AppError::TotpInvalid
            | AppError::TotpReplayed
            | AppError::TotpAlreadyEnrolled { .. } => K::TotpRejected,
            AppError::SignInLocked { .. }
            | AppError::ElevationLocked { .. }
            | AppError::Busy { .. } => K::RateLimited,
            AppError::Conflict { .. } | AppError::ImportChanged { .. } => K::Conflict,
            AppError::NoChange { .. } | AppError::AlreadyMapped { .. } => K::NoChange,
            AppError::SameRole { .. }
            | AppError::AccountExists { .. }
            | AppError::CannotMark { .. }
            | AppError::Promotion { .. }
            | AppError::ReconcileRefused { .. }
            | AppError::TokenRevoked { .. }
            | AppError::ClientKeyRevoked { .. } => K::InvalidState,
            AppError::Confirmation(_) => K::ConfirmationRequired,
            AppError::Store(error) if error.is_unavailable() => K::Unavailable,
            AppError::Store(_)
            | AppError::PasswordHash(_)
            | AppError::TotpUnreadable { .. }
            | AppError::Totp(_)
            | AppError::NoSecretKey
            | AppError::BadSecretKey
            | AppError::Random(_) => K::Internal,
        }
    }

    /// How long to wait before trying again, for a rate-limited refusal.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        if let AppError::SignInLocked { retry_after }
        | AppError::ElevationLocked { retry_after }
        | AppError::Busy { retry_after } = self
        {
            Some(*retry_after)
        } else {
            None
        }
    }
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

/// `, set by alice at 2026-11-24 07:35:42 UTC`, or nothing when no row says who.
fn changed_by(updated_by: Option<&str>, updated_at: Option<DateTime<Utc>>) -> String {
    let at = updated_at.map(|at| format!(" at {}", at.format("%Y-%m-%d %H:%M:%S UTC")));
    match (updated_by, at) {
        (Some(by), Some(at)) => format!(", set by {by}{at}"),
        (None, Some(at)) => format!(", set by direct SQL{at}"),
        (Some(by), None) => format!(", set by {by}"),
        (None, None) => String::new(),
    }
}
