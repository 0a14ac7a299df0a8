//! The sentence an audit row reads as on the console's audit page, its writer first:
//! "root turned dark_mode ON in prod: 'INC-77 rollback'", "direct SQL turned
//! dark_mode OFF in prod", "vexil expired promotion #3 of dark_mode: …".
//!
//! Every action vexil writes (`vexil_core::audit::ACTIONS`) has a sentence of its own,
//! made from the payload docs/schema.md lists for it; an action it does not know reads
//! "who, the action's last word, the target".

use chrono::{DateTime, Utc};
use serde_json::Value;
use vexil_core::audit::{
    AUTH_ELEVATE, AUTH_ELEVATE_FAILED, AUTH_SIGN_IN, AUTH_SIGN_IN_FAILED,
    AUTH_SIGN_IN_FAILED_UNKNOWN, AUTH_SIGN_OUT, CLIENT_KEY_CREATE, CLIENT_KEY_REVOKE, FLAG_ADOPT,
    FLAG_APPROVED, FLAG_EXPIRED, FLAG_FLIP, FLAG_MARK_PROMOTE, FLAG_PROMOTED, FLAG_REJECTED,
    FLAG_TOUCHED, TARGET_FEATURE_FLAG, TOKEN_CREATE, TOKEN_REVOKE, USER_ADD, USER_DISABLE,
    USER_MAP_ADMIN, USER_OLD_ADMIN, USER_SET_ROLE, USER_TOTP_ENROL,
};
use vexil_store::AuditRow;

use crate::console::page::utc;

/// A reason is quoted in the sentence up to this many characters; the details keep it
/// whole.
const REASON_CHARS: usize = 80;

/// A piece of a sentence: text, or a flag key (shown as a link to its history).
pub(crate) struct Part {
    pub(crate) text: String,
    pub(crate) flag: bool,
}

/// Who wrote the row: an admin of the console vexil adopted (docs/adopt.md), under
/// its old id; its account; else what its payload says (`"via": "sql"` is a database
/// trigger auditing direct SQL, `"cli"` an account change at the CLI); else vexil
/// itself, expiring a promotion.
pub(crate) fn who(row: &AuditRow, unproven: bool) -> String {
    if unproven {
        let claims = row.admin_name.as_deref().unwrap_or("vexil");
        return format!("direct SQL (claims {claims})");
    }
    if let Some(old_admin) = row.old_admin() {
        return old_admin.to_string();
    }
    if let Some(name) = &row.admin_name {
        return name.clone();
    }
    match text(&row.payload, "via") {
        Some("sql") => "direct SQL",
        Some("cli") => "the CLI",
        _ if row.action == FLAG_EXPIRED => "vexil",
        _ => "someone",
    }
    .to_owned()
}

/// The row in one sentence, `who` first.
pub(crate) fn sentence(row: &AuditRow, who: &str) -> Vec<Part> {
    let payload = &row.payload;
    let mut s = Sentence(vec![Part::text(who)]);
    let flag = text(payload, "flag").unwrap_or(&row.target_id);
    let name = text(payload, "name").unwrap_or(&row.target_id);
    let promotion =
        number(payload, "promotion_id").map_or_else(String::new, |id| format!("#{id} "));
    let action = row.action.as_str();
    match action {
        FLAG_FLIP => flip(&mut s, payload, flag),
        FLAG_TOUCHED => {
            let env = text(payload, "env").unwrap_or("an env");
            s.say(" wrote the ")
                .flag(flag)
                .say(&format!(" row in {env}"));
            match payload.get("value").and_then(Value::as_bool) {
                Some(value) => s.say(&format!(" without changing it (still {})", on_off(value))),
                None => s.say(" without changing its value"),
            };
        }
        FLAG_MARK_PROMOTE => {
            s.say(" marked ").flag(flag).say(" for prod");
            if let Some(ends) = text(payload, "soak_ends_at").and_then(instant) {
                s.say(&format!("; the soak ends {}", utc(ends)));
            }
        }
        FLAG_APPROVED => {
            s.say(&format!(" approved promotion {promotion}of "))
                .flag(flag);
        }
        FLAG_PROMOTED => {
            s.say(" promoted ").flag(flag).say(" to prod");
            if let Some(id) = number(payload, "promotion_id") {
                s.say(&format!(" (promotion #{id})"));
            }
        }
        FLAG_REJECTED => {
            s.say(&format!(" rejected promotion {promotion}of "))
                .flag(flag);
            s.reason(text(payload, "reason"));
        }
        FLAG_EXPIRED => {
            s.say(&format!(" expired promotion {promotion}of "))
                .flag(flag);
            if let Some(why) = text(payload, "detail").or_else(|| text(payload, "reason")) {
                s.say(&format!(": {why}"));
            }
        }
        FLAG_ADOPT => {
            let env = text(payload, "env").unwrap_or("an env");
            s.say(&format!(" adopted the {env} row of ")).flag(flag);
            if let Some(value) = payload.get("value").and_then(Value::as_bool) {
                s.say(&format!(" ({})", on_off(value)));
            }
            s.say(" as the old console left it");
        }
        USER_OLD_ADMIN => {
            let id = number(payload, "admin_id").map_or_else(String::new, |id| format!("#{id} "));
            s.say(&format!(
                " kept old console admin {id}as {name}, an account that cannot sign in"
            ));
        }
        USER_MAP_ADMIN => {
            let id = number(payload, "admin_id").map_or_else(String::new, |id| format!("#{id} "));
            s.say(&format!(" mapped old console admin {id}to account {name}"));
        }
        USER_ADD => {
            s.say(&format!(" added account {name}"));
            if let Some(role) = text(payload, "role") {
                s.say(&format!(" as {role}"));
            }
        }
        USER_SET_ROLE => {
            s.say(&format!(" changed the role of {name}"));
            if let (Some(from), Some(to)) = (text(payload, "from"), text(payload, "to")) {
                s.say(&format!(" from {from} to {to}"));
            }
        }
        USER_DISABLE => {
            s.say(&format!(" disabled account {name}"));
        }
        USER_TOTP_ENROL => {
            s.say(&format!(" set up TOTP for {name}"));
        }
        TOKEN_CREATE => {
            s.say(&format!(" created an API token for {name}"))
                .prefix(text(payload, "token"));
        }
        TOKEN_REVOKE => {
            s.say(&format!(" revoked an API token of {name}"))
                .prefix(text(payload, "token"));
        }
        CLIENT_KEY_CREATE | CLIENT_KEY_REVOKE => client_key(&mut s, row),
        AUTH_SIGN_IN => {
            s.say(" signed in").from(payload);
        }
        AUTH_SIGN_IN_FAILED => {
            let tried = text(payload, "account").unwrap_or(&row.target_id);
            let during = match text(payload, "during") {
                Some("totp_setup") => " (at TOTP set-up)",
                _ => "",
            };
            s.say(&format!(" failed to sign in as {tried}{during}"))
                .from(payload);
        }
        AUTH_SIGN_IN_FAILED_UNKNOWN => {
            let attempts = payload["attempts"].as_u64().unwrap_or(0);
            let list = |field: &str| {
                payload[field]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|item| item.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            s.say(&format!(
                " failed to sign in {attempts} times as names that are no account ({}) from {}",
                list("accounts"),
                list("from")
            ));
        }
        AUTH_SIGN_OUT => {
            s.say(" signed out").from(payload);
        }
        AUTH_ELEVATE => {
            s.say(" elevated their session").from(payload);
        }
        AUTH_ELEVATE_FAILED => {
            s.say(" gave a wrong TOTP code").from(payload);
        }
        _ => {
            s.say(&format!(
                " {} {} ",
                readable_action(action),
                row.target_type
            ));
            if row.target_type == TARGET_FEATURE_FLAG {
                s.flag(&row.target_id);
            } else {
                s.say(&row.target_id);
            }
        }
    }
    s.0
}

/// "created client key #4 for web in prod (vxc_1a2b3c4d…)".
fn client_key(s: &mut Sentence, row: &AuditRow) {
    let payload = &row.payload;
    let verb = if row.action == CLIENT_KEY_CREATE {
        "created"
    } else {
        "revoked"
    };
    let app = text(payload, "app").unwrap_or("an application");
    s.say(&format!(" {verb} client key #{} for {app}", row.target_id));
    if let Some(env) = text(payload, "env") {
        s.say(&format!(" in {env}"));
    }
    s.prefix(text(payload, "key"));
}

/// A flip: "turned dark_mode ON in prod", how it came (the API, the CLI, an import,
/// a promotion, a reconciling flip) and why. A row deleted by direct SQL leaves the
/// flag to its variable or default, which the database cannot know. An import that
/// moved the value in force into a row changed nothing, and says so.
fn flip(s: &mut Sentence, payload: &Value, flag: &str) {
    let env = text(payload, "env").unwrap_or("an env");
    if payload.get("deleted").and_then(Value::as_bool) == Some(true) {
        s.say(&format!(" deleted the {env} row of ")).flag(flag);
        if let Some(from) = payload.get("from").and_then(Value::as_bool) {
            s.say(&format!(" (it was {})", on_off(from)));
        }
    } else if let Some(to) = payload.get("to").and_then(Value::as_bool)
        && text(payload, "via") == Some("import")
        && payload.get("from").and_then(Value::as_bool) == Some(to)
    {
        s.say(" imported ").flag(flag).say(&format!(
            " {} into a row in {env} (its variable's value, already in force)",
            on_off(to)
        ));
    } else if let Some(to) = payload.get("to").and_then(Value::as_bool) {
        s.say(" turned ")
            .flag(flag)
            .say(&format!(" {} in {env}", on_off(to)));
        // A row inserted by direct SQL says what was in force before it only as far
        // as the database could know (docs/schema.md).
        if let Some(why) = text(payload, "from_unknown") {
            s.say(&format!(" (the value before is unknown: {why})"));
        }
    } else {
        s.say(" changed ").flag(flag).say(&format!(" in {env}"));
    }
    match text(payload, "via") {
        Some("api") => {
            s.say(" through the API");
        }
        Some("cli") => {
            s.say(" from the CLI");
        }
        Some("import") if payload.get("from") != payload.get("to") => {
            s.say(" by an import");
        }
        _ => {}
    }
    if let Some(id) = number(payload, "promotion_id") {
        s.say(&format!(" (promotion #{id})"));
    }
    if payload.get("reconcile").and_then(Value::as_bool) == Some(true) {
        s.say(" (reconciling flip)");
    }
    s.reason(text(payload, "reason"));
}

/// `console.client_key.rotate` → `rotate`, `console.user.set_quota` → `set quota`:
/// the last word of an action vexil has no sentence for.
pub(crate) fn readable_action(action: &str) -> String {
    action
        .rsplit('.')
        .next()
        .unwrap_or(action)
        .replace('_', " ")
}

struct Sentence(Vec<Part>);

impl Sentence {
    fn say(&mut self, text: &str) -> &mut Sentence {
        match self.0.last_mut() {
            Some(last) if !last.flag => last.text.push_str(text),
            _ => self.0.push(Part::text(text)),
        }
        self
    }

    fn flag(&mut self, key: &str) -> &mut Sentence {
        self.0.push(Part {
            text: key.to_owned(),
            flag: true,
        });
        self
    }

    /// `: 'INC-77 rollback'`, cut with `…` past `REASON_CHARS`; nothing without one.
    fn reason(&mut self, reason: Option<&str>) -> &mut Sentence {
        let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
            return self;
        };
        let quoted = if reason.chars().count() > REASON_CHARS {
            let cut: String = reason.chars().take(REASON_CHARS).collect();
            format!("{}…", cut.trim_end())
        } else {
            reason.to_owned()
        };
        self.say(&format!(": '{quoted}'"))
    }

    /// ` (vxl_1a2b3c4d…)`: the shown prefix of a token or a client key.
    fn prefix(&mut self, prefix: Option<&str>) -> &mut Sentence {
        match prefix {
            Some(prefix) => self.say(&format!(" ({prefix}…)")),
            None => self,
        }
    }

    /// ` from 192.0.2.7`, or ` at the CLI`: where a sign-in or an elevation came from.
    fn from(&mut self, payload: &Value) -> &mut Sentence {
        match text(payload, "from") {
            Some("cli") => self.say(" at the CLI"),
            Some(address) => self.say(&format!(" from {address}")),
            None => self,
        }
    }
}

impl Part {
    fn text(text: &str) -> Part {
        Part {
            text: text.to_owned(),
            flag: false,
        }
    }
}

pub(crate) fn text<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload.get(key).and_then(Value::as_str)
}

fn number(payload: &Value, key: &str) -> Option<i64> {
    payload.get(key).and_then(Value::as_i64)
}

fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

pub(crate) fn on_off(value: bool) -> &'static str {
    if value { "ON" } else { "OFF" }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vexil_core::audit::ACTIONS;

    use super::*;

    fn row(action: &str, admin: Option<&str>, target: &str, payload: Value) -> AuditRow {
        AuditRow {
            id: 7,
            created_at: DateTime::UNIX_EPOCH,
            admin_id: admin.map(|_| 1),
            admin_name: admin.map(str::to_owned),
            action: action.to_owned(),
            target_type: if action.starts_with("console.flag.") {
                "feature_flag"
            } else {
                "user"
            }
            .to_owned(),
            target_id: target.to_owned(),
            payload,
            mac: None,
            old_admin: None,
        }
    }

    fn said(row: &AuditRow) -> String {
        let parts = sentence(row, &who(row, false));
        parts.iter().map(|part| part.text.as_str()).collect()
    }

    #[test]
    fn every_action_of_vexils_has_a_sentence_of_its_own() {
        for action in ACTIONS {
            let row = row(action, Some("root"), "x", json!({}));
            let fallback = format!("root {} {} x", readable_action(action), row.target_type);
            assert_ne!(said(&row), fallback, "{action}");
        }
        assert_eq!(
            said(&row(
                "console.user.set_quota",
                Some("root"),
                "ops1",
                json!({})
            )),
            "root set quota user ops1"
        );
    }

    #[test]
    fn rows_read_as_sentences() {
        let flip = json!({"flag": "dark_mode", "env": "prod", "from": false, "to": true, "via": "console"});
        let long = "x".repeat(100);
        for (row, says) in [
            (
                row(
                    FLAG_TOUCHED,
                    None,
                    "dark_mode",
                    json!({"flag": "dark_mode", "env": "prod", "value": true, "via": "sql"}),
                ),
                "direct SQL wrote the dark_mode row in prod without changing it (still ON)",
            ),
            (
                row(
                    FLAG_FLIP,
                    None,
                    "dark_mode",
                    json!({"flag": "dark_mode", "env": "prod", "from": null, "to": true, "via": "sql",
                        "from_unknown": "no live process of prod reports its variables"}),
                ),
                "direct SQL turned dark_mode ON in prod (the value before is unknown: no live process of prod reports its variables)",
            ),
            (
                row(FLAG_FLIP, Some("root"), "dark_mode", {
                    let mut p = flip.clone();
                    p["reason"] = json!("INC-77 rollback");
                    p
                }),
                "root turned dark_mode ON in prod: 'INC-77 rollback'",
            ),
            (
                row(FLAG_FLIP, Some("root"), "dark_mode", {
                    let mut p = flip.clone();
                    p["from"] = json!(true);
                    p["via"] = json!("import");
                    p
                }),
                "root imported dark_mode ON into a row in prod (its variable's value, already in force)",
            ),
            (
                row(FLAG_FLIP, Some("root"), "dark_mode", {
                    let mut p = flip.clone();
                    p["via"] = json!("import");
                    p
                }),
                "root turned dark_mode ON in prod by an import",
            ),
            (
                row(FLAG_FLIP, Some("root"), "dark_mode", {
                    let mut p = flip.clone();
                    p["reason"] = json!(long);
                    p["via"] = json!("api");
                    p
                }),
                &format!(
                    "root turned dark_mode ON in prod through the API: '{}…'",
                    "x".repeat(80)
                ),
            ),
            (
                row(
                    FLAG_FLIP,
                    None,
                    "dark_mode",
                    json!({"flag": "dark_mode", "env": "prod", "from": true, "to": null, "deleted": true, "via": "sql"}),
                ),
                "direct SQL deleted the prod row of dark_mode (it was ON)",
            ),
            (
                row(
                    FLAG_EXPIRED,
                    None,
                    "dark_mode",
                    json!({"flag": "dark_mode", "promotion_id": 3, "reason": "staging_changed", "detail": "the staging value changed while it was open"}),
                ),
                "vexil expired promotion #3 of dark_mode: the staging value changed while it was open",
            ),
            (
                row(
                    USER_ADD,
                    None,
                    "ops1",
                    json!({"name": "ops1", "role": "ops", "via": "cli"}),
                ),
                "the CLI added account ops1 as ops",
            ),
            (
                row(
                    AUTH_SIGN_IN_FAILED,
                    None,
                    "bob",
                    json!({"account": "bob", "from": "192.0.2.7"}),
                ),
                "someone failed to sign in as bob from 192.0.2.7",
            ),
            (
                row(
                    AUTH_SIGN_IN_FAILED,
                    None,
                    "bob",
                    json!({"account": "bob", "from": "192.0.2.7", "during": "totp_setup"}),
                ),
                "someone failed to sign in as bob (at TOTP set-up) from 192.0.2.7",
            ),
            (
                row(
                    AUTH_SIGN_IN_FAILED_UNKNOWN,
                    None,
                    "",
                    json!({"attempts": 3, "accounts": ["x", "y"], "from": ["192.0.2.7"], "since": "2026-12-04T10:00:00+00:00"}),
                ),
                "someone failed to sign in 3 times as names that are no account (x, y) from 192.0.2.7",
            ),
            (
                row(
                    FLAG_ADOPT,
                    None,
                    "dark_mode",
                    json!({"flag": "dark_mode", "env": "prod", "value": true, "via": "cli"}),
                ),
                "the CLI adopted the prod row of dark_mode (ON) as the old console left it",
            ),
            (
                row(
                    USER_MAP_ADMIN,
                    None,
                    "alice",
                    json!({"admin_id": 7, "name": "alice", "from": null, "via": "cli"}),
                ),
                "the CLI mapped old console admin #7 to account alice",
            ),
        ] {
            assert_eq!(said(&row), says);
        }
    }

    #[test]
    fn an_old_console_admin_writes_as_one() {
        let mut row = row(
            FLAG_FLIP,
            Some("console_admin_7"),
            "dark_mode",
            json!({"flag": "dark_mode", "env": "prod", "from": false, "to": true}),
        );
        row.admin_id = Some(7);
        row.old_admin = Some(vexil_store::OldAdminOf {
            account: None,
            before_vexil: true,
        });
        assert_eq!(
            said(&row),
            "console admin #7 (before vexil) turned dark_mode ON in prod"
        );
        row.old_admin = Some(vexil_store::OldAdminOf {
            account: Some("alice".to_owned()),
            before_vexil: false,
        });
        assert_eq!(
            said(&row),
            "alice (console admin #7, old console) turned dark_mode ON in prod"
        );
    }
}
