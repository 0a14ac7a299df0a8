//! The audit log's vocabulary (docs/schema.md#audit-actions): the fixed action names, target types and
//! payloads, so that every writer spells them the same way.

use serde::Serialize;

use crate::key::{Env, FlagKey};
use crate::text::{self, TextError};

/// `console.flag.flip`: a flag's value changed in one env.
pub const FLAG_FLIP: &str = "console.flag.flip";
pub const FLAG_MARK_PROMOTE: &str = "console.flag.mark_promote";
pub const FLAG_APPROVED: &str = "console.flag.approved";
pub const FLAG_PROMOTED: &str = "console.flag.promoted";
pub const FLAG_REJECTED: &str = "console.flag.rejected";
pub const FLAG_EXPIRED: &str = "console.flag.expired";
/// A row of the old console's `console_feature_flags`, as vexil found it when it adopted
/// the database (docs/adopt.md): not a flip, so never flip evidence.
pub const FLAG_ADOPT: &str = "console.flag.adopt";
/// A direct SQL write that left a flag's value as it was (the runbook's `UPDATE … SET
/// value=1` on a row already 1): recorded, but never a flip, so never flip evidence
/// (docs/schema.md). Written by the database's triggers only.
pub const FLAG_TOUCHED: &str = "console.flag.touched";
/// An account was created.
pub const USER_ADD: &str = "console.user.add";
pub const USER_SET_ROLE: &str = "console.user.set_role";
pub const USER_DISABLE: &str = "console.user.disable";
pub const USER_TOTP_ENROL: &str = "console.user.totp_enrol";
/// An admin of the old console, kept as a disabled account under its old id when
/// vexil adopted the console's database (docs/adopt.md), or later by `vexil user
/// map-admin` for an id not seen before.
pub const USER_OLD_ADMIN: &str = "console.user.old_admin";
/// An old console admin's id mapped to a vexil account (`vexil user map-admin`).
pub const USER_MAP_ADMIN: &str = "console.user.map_admin";
/// An API token was created for an account (docs/schema.md: account changes are audited
/// under `console.user.*`).
pub const TOKEN_CREATE: &str = "console.user.token_create";
pub const TOKEN_REVOKE: &str = "console.user.token_revoke";
/// A client key was created (docs/roles.md#client-keys): an application may read one env's flags.
pub const CLIENT_KEY_CREATE: &str = "console.client_key.create";
pub const CLIENT_KEY_REVOKE: &str = "console.client_key.revoke";

/// Sign-ins to the console; every attempt is audited (docs/roles.md#signing-in).
pub const AUTH_SIGN_IN: &str = "console.auth.sign_in";
/// A sign-in refused: wrong password, unknown or disabled account (one reason, kept
/// vague for the one signing in; the row says which name was tried, and from where).
pub const AUTH_SIGN_IN_FAILED: &str = "console.auth.sign_in_failed";
/// Failed sign-ins for names that are no account, summed: one row per minute per
/// server (`"attempts"`, and the first `"accounts"` and `"from"` addresses), so that
/// made-up names cannot flood the log (docs/roles.md).
pub const AUTH_SIGN_IN_FAILED_UNKNOWN: &str = "console.auth.sign_in_failed_unknown";
/// A console session ended by its account.
pub const AUTH_SIGN_OUT: &str = "console.auth.sign_out";
/// A fresh TOTP code elevated a session (docs/roles.md#elevation).
pub const AUTH_ELEVATE: &str = "console.auth.elevate";
/// A TOTP code refused: wrong, expired or replayed.
pub const AUTH_ELEVATE_FAILED: &str = "console.auth.elevate_failed";

/// Every action vexil and its triggers write, for pickers and filters.
pub const ACTIONS: [&str; 24] = [
    FLAG_FLIP,
    FLAG_TOUCHED,
    FLAG_MARK_PROMOTE,
    FLAG_APPROVED,
    FLAG_PROMOTED,
    FLAG_REJECTED,
    FLAG_EXPIRED,
    FLAG_ADOPT,
    USER_ADD,
    USER_SET_ROLE,
    USER_DISABLE,
    USER_TOTP_ENROL,
    USER_OLD_ADMIN,
    USER_MAP_ADMIN,
    TOKEN_CREATE,
    TOKEN_REVOKE,
    CLIENT_KEY_CREATE,
    CLIENT_KEY_REVOKE,
    AUTH_SIGN_IN,
    AUTH_SIGN_IN_FAILED,
    AUTH_SIGN_IN_FAILED_UNKNOWN,
    AUTH_SIGN_OUT,
    AUTH_ELEVATE,
    AUTH_ELEVATE_FAILED,
];

/// The longest reason kept with a change, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Why a reason cannot be kept; each message names the field, `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("reason: it is longer than {MAX_REASON_CHARS} characters")]
    TooLong,
    /// A character free text may not hold (`crate::text`).
    #[error(transparent)]
    Text(#[from] TextError),
}

/// A reason as an operator gave it, for the audit row: trimmed, none when empty,
/// refused when longer than [`MAX_REASON_CHARS`] or holding a character free text
/// may not hold (`crate::text`: a reason is one line of the audit sentence). One rule
/// for every door.
pub fn reason(text: Option<&str>) -> Result<Option<&str>, ReasonError> {
    let Some(given) = text.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if given.chars().count() > MAX_REASON_CHARS {
        return Err(ReasonError::TooLong);
    }
    text::check("reason", given)?;
    Ok(Some(given))
}

/// `target_type` of rows about a flag.
pub const TARGET_FEATURE_FLAG: &str = "feature_flag";
/// `target_type` of rows about an account (and its tokens).
pub const TARGET_USER: &str = "user";
/// `target_type` of rows about a client key (`target_id` is its id).
pub const TARGET_CLIENT_KEY: &str = "client_key";

/// The door a change came through, recorded as `"via"` in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Console,
    Api,
    /// The break-glass CLI.
    Cli,
    /// Direct SQL, audited by a database trigger rather than by vexil.
    Sql,
    /// `vexil import`: a row written from an app's `FLAG_*` config (docs/import.md).
    Import,
}

impl Via {
    /// The name recorded in payloads (and used as a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Console => "console",
            Via::Api => "api",
            Via::Cli => "cli",
            Via::Sql => "sql",
            Via::Import => "import",
        }
    }
}

/// The payload of a `console.flag.flip` row: the four keys docs/schema.md fixes, plus how and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlipPayload<'a> {
    pub flag: &'a FlagKey,
    pub env: &'a Env,
    /// The effective value before the flip, whatever its source.
    pub from: bool,
    pub to: bool,
    pub via: Via,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// When the env's live processes disagreed about the flag's variable and no row
    /// decided it: how many reported each state. `from` is then vexil's best guess
    /// (the YAML default), and this says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<&'a std::collections::BTreeMap<crate::VarState, usize>>,
    /// The promotion whose last step this flip is (docs/promotion.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<i64>,
    /// A reconciling flip: it makes the row say what live processes ran
    /// after a break-glass change.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reconcile: bool,
}
