//! The evaluation plane's messages (`/sdk/v1`): what a server sends the processes that
//! follow it (`Snapshot`, `Change`) and what those processes report (`Report`), as
//! serde types that the server and the libraries share, and `AppName`, the name a
//! client key and its processes go by.
//!
//! A subscriber is sent rows and declarations, never resolved values: each process
//! resolves with its own `FLAG_*` variables and master switch (`resolve`), exactly as
//! a process linked to the database does. A report carries variables parsed
//! (`on`/`off`/`invalid`), never raw values; `Report::check` refuses anything else,
//! naming the field.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::decl::FlagSet;
use crate::env_var::{MAX_UNDECLARED_REPORTED, is_flag_variable};
use crate::key::Env;
use crate::message::quoted;
use crate::reported::{MASTER_KEY, VarState};
use crate::risk::Risk;

/// An application's name, as a client key names it and its processes report it
/// (`raxx-console-prod`): 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or a
/// digit. Safe in a URL, a log line and a table cell.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(Box<str>);

/// Why a text is not an application name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid application name {}: {reason}", quoted(text))]
pub struct AppNameError {
    text: String,
    reason: &'static str,
}

impl AppName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<AppName, AppNameError> {
        let refuse = |reason| {
            Err(AppNameError {
                text: text.to_owned(),
                reason,
            })
        };
        if text.is_empty() {
            return refuse("it is empty");
        }
        if text.len() > AppName::MAX_LEN {
            return refuse("it is longer than 64 characters");
        }
        if !text.starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
            return refuse("it must start with a letter or a digit");
        }
        if !text
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
        {
            return refuse("only letters, digits, '.', '_' and '-' are allowed");
        }
        Ok(AppName(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One declared flag as a subscriber gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagEntry {
    /// The env's DB row, `None` when there is none.
    pub row: Option<bool>,
    /// The flags file's default.
    pub default: bool,
    pub risk: Risk,
    pub description: String,
    /// The audit row behind the DB row, which a process reports back as the change
    /// it holds (propagation receipts, `vexil audit show`).
    pub audit_id: Option<i64>,
}

/// Every declared flag of one env, and the change it is current to. The first event
/// of every stream, and what `GET /sdk/v1/snapshot` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub env: String,
    /// Resume the stream from here (`Last-Event-ID`).
    pub change_id: i64,
    /// How a following process treats an unset master switch: `true`, rows decide
    /// (it chose to follow vexil); `FLAG_CONSOLE_FEATURE_FLAGS_DB=0` still turns them
    /// off, as the runbook's Option B does.
    pub master_switch_default: bool,
    /// In the flags file's order.
    pub flags: IndexMap<String, FlagEntry>,
}

impl Snapshot {
    /// `flags`' declarations with `rows` (this env's DB rows: value and audit id).
    pub fn build(
        env: &Env,
        change_id: i64,
        flags: &FlagSet,
        rows: impl Fn(&str) -> Option<(bool, Option<i64>)>,
    ) -> Snapshot {
        let flags = flags
            .iter()
            .map(|decl| {
                let row = rows(decl.key().as_str());
                let entry = FlagEntry {
                    row: row.map(|(value, _)| value),
                    default: decl.default(),
                    risk: decl.risk(),
                    description: decl.description().to_owned(),
                    audit_id: row.and_then(|(_, audit_id)| audit_id),
                };
                (decl.key().to_string(), entry)
            })
            .collect();
        Snapshot {
            env: env.to_string(),
            change_id,
            master_switch_default: true,
            flags,
        }
    }
}

/// One row changed: the `change` event of the stream, whose SSE `id` is `change_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub change_id: i64,
    pub key: String,
    /// The row now, `None` when it was deleted.
    pub row: Option<bool>,
    pub audit_id: Option<i64>,
}

/// A row a process holds, and since when (its own clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub audit_id: i64,
    pub applied_at: DateTime<Utc>,
}

/// What a process that follows a server reports about itself (`POST /sdk/v1/report`),
/// every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Random, chosen by the process when it starts: `A-Z a-z 0-9 _ -`, 1 to 64.
    pub instance: String,
    /// If given, the key's env (a process that says another is misconfigured).
    #[serde(default)]
    pub env: Option<String>,
    /// If given, the key's application.
    #[serde(default)]
    pub app: Option<String>,
    pub host: String,
    pub pid: i64,
    /// `rust`, `python`, …
    pub language: String,
    /// The version of the vexil library or package it runs.
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// `FLAG_CONSOLE_FEATURE_FLAGS_DB` parsed: `unset`, `on`, `off` or `invalid`.
    pub master_switch: String,
    /// Each declared flag whose `FLAG_*` variable is set: `on`, `off` or `invalid`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// `FLAG_*` variables set that no flag declares, by name: `on`, `off` or
    /// `invalid` (`vexil doctor --gone`). Left out when empty, so that a server older
    /// than this field never sees it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub undeclared: BTreeMap<String, String>,
    /// The last change of the stream it applied.
    #[serde(default)]
    pub change_id: Option<i64>,
    /// The rows it holds (those with an audit id).
    #[serde(default)]
    pub applied: BTreeMap<String, Held>,
}

/// A report as it may be recorded: checked against the flags and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedReport {
    pub instance: String,
    pub host: String,
    pub pid: i64,
    pub language: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// The master switch as it acts (an unset one is on, `master_switch_default`) and
    /// each variable, parsed: the env layer every fleet tool reads.
    pub env_layer: BTreeMap<String, String>,
    pub change_id: Option<i64>,
    pub applied: BTreeMap<String, Held>,
}

/// Why a report is refused. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the report names env {} but this client key reads {key_env}",
        quoted(given)
    )]
    WrongEnv { given: String, key_env: String },
    #[error(
        "the report names application {} but this client key is {key_app}'s",
        quoted(given)
    )]
    WrongApp { given: String, key_app: String },
    #[error(
        "{field}: unknown flag {}: it is not declared in the server's flags file",
        quoted(key)
    )]
    UnknownFlag { field: &'static str, key: String },
    #[error(
        "{field} {}: {} is not a parsed state (expected {expected}; a raw variable value is never sent)",
        quoted(key),
        quoted(value)
    )]
    NotAState {
        field: &'static str,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

impl Report {
    /// The report, if it fits the server's `flags` and the key (`key_env`,
    /// `key_app`): declared flags only, parsed states only, the key's env and app.
    pub fn check(
        self,
        flags: &FlagSet,
        key_env: &Env,
        key_app: &AppName,
    ) -> Result<CheckedReport, ReportError> {
        if let Some(given) = self.env.as_deref()
            && given != key_env.as_str()
        {
            return Err(ReportError::WrongEnv {
                given: given.to_owned(),
                key_env: key_env.to_string(),
            });
        }
        if let Some(given) = self.app.as_deref()
            && given != key_app.as_str()
        {
            return Err(ReportError::WrongApp {
                given: given.to_owned(),
                key_app: key_app.to_string(),
            });
        }
        check_text("instance", &self.instance, 64, |ch| {
            ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-')
        })?;
        check_text("host", &self.host, 255, |ch| ch.is_ascii_graphic())?;
        check_text("language", &self.language, 32, |ch| {
            ch.is_ascii_lowercase()
                || ch.is_ascii_digit()
                || matches!(ch, '+' | '#' | '.' | '_' | '-')
        })?;
        check_text("version", &self.version, 64, |ch| {
            ch.is_ascii_alphanumeric() || matches!(ch, '+' | '.' | '_' | '-')
        })?;
        if self.pid < 0 {
            return Err(ReportError::Invalid {
                field: "pid",
                reason: "it is negative",
            });
        }
        if self.change_id.is_some_and(|id| id < 0) {
            return Err(ReportError::Invalid {
                field: "change_id",
                reason: "it is negative",
            });
        }
        let master = match self.master_switch.as_str() {
            // A process following a server treats an unset master switch as on
            // (`Snapshot::master_switch_default`): it is recorded as it acts.
            "unset" | "on" => VarState::On,
            "off" => VarState::Off,
            "invalid" => VarState::Invalid,
            other => {
                return Err(ReportError::NotAState {
                    field: "master_switch",
                    key: MASTER_KEY.to_owned(),
                    value: other.to_owned(),
                    expected: "unset, on, off or invalid",
                });
            }
        };
        let mut env_layer = BTreeMap::new();
        env_layer.insert(MASTER_KEY.to_owned(), master.as_str().to_owned());
        for (key, value) in self.vars {
            if flags.get(&key).is_none() {
                return Err(ReportError::UnknownFlag { field: "vars", key });
            }
            let state = match value.as_str() {
                "on" | "off" | "invalid" => value,
                _ => {
                    return Err(ReportError::NotAState {
                        field: "vars",
                        key,
                        value,
                        expected: "on, off or invalid",
                    });
                }
            };
            env_layer.insert(key, state);
        }
        if self.undeclared.len() > MAX_UNDECLARED_REPORTED {
            return Err(ReportError::Invalid {
                field: "undeclared",
                reason: "it lists too many variables",
            });
        }
        for (name, value) in self.undeclared {
            if !is_flag_variable(&name) {
                return Err(ReportError::Invalid {
                    field: "undeclared",
                    reason: "a name is not FLAG_ and upper-case letters, digits and underscores",
                });
            }
            if !matches!(value.as_str(), "on" | "off" | "invalid") {
                return Err(ReportError::NotAState {
                    field: "undeclared",
                    key: name,
                    value,
                    expected: "on, off or invalid",
                });
            }
            env_layer.insert(name, value);
        }
        if let Some(key) = self.applied.keys().find(|key| flags.get(key).is_none()) {
            return Err(ReportError::UnknownFlag {
                field: "applied",
                key: key.clone(),
            });
        }
        Ok(CheckedReport {
            instance: self.instance,
            host: self.host,
            pid: self.pid,
            language: self.language,
            version: self.version,
            started_at: self.started_at,
            env_layer,
            change_id: self.change_id,
            applied: self.applied,
        })
    }
}

/// `text` is 1 to `max` characters, each `allowed`.
fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), ReportError> {
    let reason = if text.is_empty() {
        "it is empty"
    } else if text.chars().count() > max {
        "it is too long"
    } else if !text.chars().all(allowed) {
        "it holds a character that is not allowed"
    } else {
        return Ok(());
    };
    Err(ReportError::Invalid { field, reason })
}
