//! An audit row as the console's audit page shows it: its sentence
//! (`audit_sentence.rs`), its time relative to the app's clock with the UTC instant on
//! hover, its action's readable name, and the whole payload folded away, the keys a
//! reader looks for first (from, to, reason) first.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;
use vexil_app::ReceiptSummary;
use vexil_core::audit::{
    AUTH_ELEVATE, AUTH_ELEVATE_FAILED, AUTH_SIGN_IN, AUTH_SIGN_IN_FAILED,
    AUTH_SIGN_IN_FAILED_UNKNOWN, AUTH_SIGN_OUT, CLIENT_KEY_CREATE, CLIENT_KEY_REVOKE, FLAG_ADOPT,
    FLAG_APPROVED, FLAG_EXPIRED, FLAG_FLIP, FLAG_MARK_PROMOTE, FLAG_PROMOTED, FLAG_REJECTED,
    FLAG_TOUCHED, TOKEN_CREATE, TOKEN_REVOKE, USER_ADD, USER_DISABLE, USER_MAP_ADMIN,
    USER_OLD_ADMIN, USER_SET_ROLE, USER_TOTP_ENROL,
};
use vexil_store::AuditRow;

use crate::console::audit_sentence::{Part, on_off, readable_action, sentence, who};
use crate::console::page::utc;

/// Payload keys in the order the details list them; keys not named here follow in
/// the payload's own order. What changed and why come first, then what it was about,
/// then the bookkeeping.
const KEY_ORDER: [&str; 24] = [
    "from",
    "to",
    "reason",
    "detail",
    "flag",
    "env",
    "name",
    "admin_id",
    "value",
    "account",
    "role",
    "app",
    "state",
    "promotion_id",
    "soak_ends_at",
    "soak_period_hours",
    "flip_audit_id",
    "reconcile",
    "deleted",
    "drift",
    "id",
    "key",
    "token",
    "via",
];

pub(crate) struct RowView {
    pub(crate) id: i64,
    pub(crate) when: When,
    pub(crate) sentence: Vec<Part>,
    /// The action's readable name ("Flag flipped").
    pub(crate) label: String,
    /// The action's fixed name (`console.flag.flip`).
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) details: Vec<(String, String)>,
    /// For a flip: how far it has propagated (`App::receipts_for`).
    pub(crate) receipt: Option<ReceiptView>,
}

/// A time as the rows show it: relative, with the instant for `<time>` and its title.
pub(crate) struct When {
    /// `3 min ago`, `yesterday`, `2026-01-12`.
    pub(crate) relative: String,
    /// `2026-01-15T09:30:00Z`.
    pub(crate) iso: String,
    /// `2026-01-15 09:30:00 UTC`.
    pub(crate) utc: String,
}

pub(crate) struct ReceiptView {
    /// `seen by 2 of 3 instances, slowest 41 ms; missing: …`.
    pub(crate) text: String,
    /// Some process that applies rows does not hold it (yet).
    pub(crate) missing: bool,
}

/// `row` as the page shows it at `now`. `unproven`: the row claims an account or a
/// door of vexil's without the proof vexil writes (docs/audit-integrity.md), so it is
/// told as direct SQL.
pub(crate) fn row_view(
    row: &AuditRow,
    now: DateTime<Utc>,
    receipt: Option<&ReceiptSummary>,
    unproven: bool,
) -> RowView {
    RowView {
        id: row.id,
        when: when(now, row.created_at),
        sentence: sentence(row, &who(row, unproven)),
        label: label(&row.action).map_or_else(|| readable_action(&row.action), str::to_owned),
        action: row.action.clone(),
        target: format!("{} {}", row.target_type, row.target_id),
        details: details(&row.payload),
        receipt: receipt.map(|summary| ReceiptView {
            text: summary.to_string(),
            missing: !summary.complete(),
        }),
    }
}

/// The readable name of one of vexil's actions, for the filter and the details.
pub(crate) fn label(action: &str) -> Option<&'static str> {
    Some(match action {
        FLAG_FLIP => "Flag flipped",
        FLAG_TOUCHED => "Unchanged write",
        FLAG_MARK_PROMOTE => "Marked for prod",
        FLAG_APPROVED => "Promotion approved",
        FLAG_PROMOTED => "Flag promoted",
        FLAG_REJECTED => "Promotion rejected",
        FLAG_EXPIRED => "Promotion expired",
        FLAG_ADOPT => "Flag row adopted",
        USER_ADD => "Account added",
        USER_SET_ROLE => "Role changed",
        USER_DISABLE => "Account disabled",
        USER_TOTP_ENROL => "TOTP set up",
        USER_OLD_ADMIN => "Old console admin kept",
        USER_MAP_ADMIN => "Old console admin mapped",
        TOKEN_CREATE => "API token created",
        TOKEN_REVOKE => "API token revoked",
        CLIENT_KEY_CREATE => "Client key created",
        CLIENT_KEY_REVOKE => "Client key revoked",
        AUTH_SIGN_IN => "Signed in",
        AUTH_SIGN_IN_FAILED => "Sign-in failed",
        AUTH_SIGN_IN_FAILED_UNKNOWN => "Unknown-name sign-ins",
        AUTH_SIGN_OUT => "Signed out",
        AUTH_ELEVATE => "Session elevated",
        AUTH_ELEVATE_FAILED => "TOTP code refused",
        _ => return None,
    })
}

/// How long before `now` `at` was: `12 s ago`, `3 min ago`, `2 h ago`, then
/// `yesterday` (the UTC day before), then the UTC date. A row from a little ahead of
/// this server's clock (another server's, or the database's) is `just now`; from
/// further ahead, its date.
pub(crate) fn relative(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    match seconds {
        -59..=0 => "just now".to_owned(),
        1..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ if at.date_naive() == (now - TimeDelta::days(1)).date_naive() => "yesterday".to_owned(),
        _ => at.format("%Y-%m-%d").to_string(),
    }
}

fn when(now: DateTime<Utc>, at: DateTime<Utc>) -> When {
    When {
        relative: relative(now, at),
        iso: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        utc: utc(at),
    }
}

/// The payload as (key, value) pairs in `KEY_ORDER`, values as a person reads them.
fn details(payload: &Value) -> Vec<(String, String)> {
    let Value::Object(fields) = payload else {
        return vec![("payload".to_owned(), readable("payload", payload))];
    };
    let mut pairs: Vec<(&String, &Value)> = fields.iter().collect();
    let rank = |key: &str| {
        KEY_ORDER
            .iter()
            .position(|k| *k == key)
            .unwrap_or(KEY_ORDER.len())
    };
    // A stable sort: the keys not in the order keep the payload's.
    pairs.sort_by_key(|(key, _)| rank(key));
    pairs
        .into_iter()
        .map(|(key, value)| (key.clone(), readable(key, value)))
        .collect()
}

/// A payload value as a person reads it: text as is, a flip's `from`/`to` as on/off
/// and other booleans as yes/no, nothing as a dash, the rest as compact JSON.
fn readable(key: &str, value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(value) if matches!(key, "from" | "to") => on_off(*value).to_lowercase(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;
    use vexil_core::audit::ACTIONS;

    use super::*;

    #[test]
    fn every_action_of_vexils_has_a_readable_name() {
        for action in ACTIONS {
            assert!(label(action).is_some(), "{action}");
        }
    }

    #[test]
    fn details_put_the_change_and_its_reason_first() {
        let payload = json!({"via": "console", "to": true, "reason": "why", "flag": "f", "env": "prod", "from": false, "zeta": 1});
        let keys: Vec<String> = details(&payload).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["from", "to", "reason", "flag", "env", "via", "zeta"]);
    }

    #[test]
    fn times_read_relative_to_now() {
        let now = DateTime::parse_from_rfc3339("2026-01-15T09:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for (before, says) in [
            (-30, "just now"),
            (0, "just now"),
            (12, "12 s ago"),
            (3 * 60 + 5, "3 min ago"),
            (2 * 3600, "2 h ago"),
            (86_400 + 60, "yesterday"),
            (86_400 + 9 * 3600 + 31 * 60, "2026-01-13"),
            (-3600, "2026-01-15"),
        ] {
            assert_eq!(
                relative(now, now - TimeDelta::seconds(before)),
                says,
                "{before}"
            );
        }
    }
}
