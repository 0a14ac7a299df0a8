//! `FlagKey` and `Env`: the two names every flag row, audit entry and request carries.
//!
//! Both are checked once, where text enters vexil, and carried as types from then on
//! (ARCHITECTURE.md, invariant 6): code past the edge never re-checks a `&str`.

use std::borrow::{Borrow, Cow};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::message::quoted;

/// A declared flag's key: `^[a-z][a-z0-9_]{0,63}$` (docs/flags-file.md).
///
/// The grammar makes the key safe everywhere it travels: in a URL path, in an SQL
/// literal typed by an operator, and upper-cased into a `FLAG_*` variable name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlagKey(Box<str>);

/// Why a text is not a flag key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagKeyError {
    Empty,
    /// More than [`FlagKey::MAX_LEN`] characters.
    TooLong {
        key: String,
        len: usize,
    },
    /// The first character is not `a-z`.
    BadStart {
        key: String,
    },
    /// A character outside `a-z`, `0-9` and `_`, at a 1-based position.
    BadChar {
        key: String,
        ch: char,
        position: usize,
    },
}

impl FlagKeyError {
    /// The rule the text broke, without the text itself (for messages that already
    /// name the key, such as a flags-file error).
    pub fn reason(&self) -> String {
        match self {
            FlagKeyError::Empty => "it is empty".to_owned(),
            FlagKeyError::TooLong { len, .. } => {
                format!(
                    "it is {len} characters long; the limit is {}",
                    FlagKey::MAX_LEN
                )
            }
            FlagKeyError::BadStart { .. } => {
                "it must start with a lower-case letter (a-z)".to_owned()
            }
            FlagKeyError::BadChar { ch, position, .. } => format!(
                "it contains {} at position {position}; only a-z, 0-9 and _ are allowed",
                quoted(ch.encode_utf8(&mut [0; 4]))
            ),
        }
    }
}

impl fmt::Display for FlagKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagKeyError::Empty => f.write_str("flag key is empty"),
            FlagKeyError::TooLong { key, .. }
            | FlagKeyError::BadStart { key }
            | FlagKeyError::BadChar { key, .. } => {
                write!(f, "invalid flag key {}: {}", quoted(key), self.reason())
            }
        }
    }
}

impl std::error::Error for FlagKeyError {}

impl FlagKey {
    /// The longest key the grammar allows, in characters (all ASCII, so also bytes).
    pub const MAX_LEN: usize = 64;

    /// Checks `text` against `^[a-z][a-z0-9_]{0,63}$`.
    pub fn parse(text: &str) -> Result<FlagKey, FlagKeyError> {
        let mut chars = text.chars();
        let Some(first) = chars.next() else {
            return Err(FlagKeyError::Empty);
        };
        let len = text.chars().count();
        if len > Self::MAX_LEN {
            return Err(FlagKeyError::TooLong {
                key: text.to_owned(),
                len,
            });
        }
        if !first.is_ascii_lowercase() {
            return Err(FlagKeyError::BadStart {
                key: text.to_owned(),
            });
        }
        if let Some((position, ch)) = text
            .chars()
            .enumerate()
            .find(|&(_, ch)| !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'))
        {
            return Err(FlagKeyError::BadChar {
                key: text.to_owned(),
                ch,
                position: position + 1,
            });
        }
        Ok(FlagKey(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The process variable that overrides this flag: `FLAG_` and the key upper-cased
    /// (`my_new_feature` → `FLAG_MY_NEW_FEATURE`, docs/flags-file.md#resolution).
    pub fn env_var_name(&self) -> String {
        let mut name = String::with_capacity(5 + self.0.len());
        name.push_str(crate::env_var::PREFIX);
        name.extend(self.0.chars().map(|ch| ch.to_ascii_uppercase()));
        name
    }
}

impl fmt::Display for FlagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FlagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Lets a map keyed by `FlagKey` be searched with the `&str` an application asks for.
impl Borrow<str> for FlagKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for FlagKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FlagKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        FlagKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One of the environments vexil manages, e.g. the runbook's `staging` and `prod`.
///
/// An `Env` is only made by [`Envs::parse`] (or is one of the two constants), so a
/// value of this type always names a configured environment.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Env(Cow<'static, str>);

impl Env {
    pub const STAGING: Env = Env(Cow::Borrowed("staging"));
    pub const PROD: Env = Env(Cow::Borrowed("prod"));

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Env {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The configured list of environments. Today it is always the runbook's two;
/// the type exists so that a configured list is a change in one place later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envs(Vec<Env>);

/// Why a text names no configured environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("unknown env {} (expected one of: {known})", quoted(name))]
    Unknown { name: String, known: String },
    #[error(
        "invalid env name {}: it must match ^[a-z][a-z0-9_-]{{0,31}}$ (lower-case letter first)",
        quoted(name)
    )]
    BadName { name: String },
    #[error("env {} is listed twice", quoted(name))]
    Duplicate { name: String },
    #[error("the list of envs is empty")]
    Empty,
}

impl Envs {
    /// `staging` and `prod`, in the order a flag travels between them.
    pub fn runbook() -> Envs {
        Envs(vec![Env::STAGING, Env::PROD])
    }

    /// A configured list: each name must match `^[a-z][a-z0-9_-]{0,31}$`, once.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Envs, EnvError> {
        let mut envs: Vec<Env> = Vec::new();
        for name in names {
            if !is_env_name(name) {
                return Err(EnvError::BadName {
                    name: name.to_owned(),
                });
            }
            if envs.iter().any(|env| env.as_str() == name) {
                return Err(EnvError::Duplicate {
                    name: name.to_owned(),
                });
            }
            envs.push(Env(Cow::Owned(name.to_owned())));
        }
        if envs.is_empty() {
            return Err(EnvError::Empty);
        }
        Ok(Envs(envs))
    }

    /// The configured env called `name` (exact, case-sensitive).
    pub fn parse(&self, name: &str) -> Result<Env, EnvError> {
        self.0
            .iter()
            .find(|env| env.as_str() == name)
            .cloned()
            .ok_or_else(|| EnvError::Unknown {
                name: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Env> {
        self.0.iter()
    }

    fn names(&self) -> Vec<&str> {
        self.0.iter().map(Env::as_str).collect()
    }
}

impl Default for Envs {
    fn default() -> Self {
        Envs::runbook()
    }
}

fn is_env_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(b'a'..=b'z'))
        && bytes.len() <= 32
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_key(text: &str, expected: Result<(), &str>) {
        let actual = FlagKey::parse(text).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(actual, expected.map_err(str::to_owned), "input {text:?}");
    }

    #[test]
    fn flag_key_grammar() {
        check_key("a", Ok(()));
        check_key("my_new_feature", Ok(()));
        check_key("billing_v2", Ok(()));
        check_key("a_", Ok(()));
        check_key(&format!("a{}", "b".repeat(63)), Ok(()));
        check_key("", Err("flag key is empty"));
        check_key(
            &format!("a{}", "b".repeat(64)),
            Err(&format!(
                "invalid flag key 'a{}'…: it is 65 characters long; the limit is 64",
                "b".repeat(63)
            )),
        );
        check_key(
            "Billing",
            Err("invalid flag key 'Billing': it must start with a lower-case letter (a-z)"),
        );
        check_key(
            "_x",
            Err("invalid flag key '_x': it must start with a lower-case letter (a-z)"),
        );
        check_key(
            "9x",
            Err("invalid flag key '9x': it must start with a lower-case letter (a-z)"),
        );
        check_key(
            "billing-v2",
            Err(
                "invalid flag key 'billing-v2': it contains '-' at position 8; only a-z, 0-9 and _ are allowed",
            ),
        );
        check_key(
            "billingV2",
            Err(
                "invalid flag key 'billingV2': it contains 'V' at position 8; only a-z, 0-9 and _ are allowed",
            ),
        );
        check_key(
            "caf\u{e9}",
            Err(
                "invalid flag key 'caf\u{e9}': it contains '\u{e9}' at position 4; only a-z, 0-9 and _ are allowed",
            ),
        );
        check_key(
            "a\nb",
            Err(
                "invalid flag key 'a\\nb': it contains '\\n' at position 2; only a-z, 0-9 and _ are allowed",
            ),
        );
    }

    #[test]
    fn env_var_name_upper_cases_the_key() {
        let key = FlagKey::parse("my_new_feature2").unwrap();
        assert_eq!(key.env_var_name(), "FLAG_MY_NEW_FEATURE2");
    }

    #[test]
    fn runbook_envs_parse_exactly() {
        let envs = Envs::runbook();
        assert_eq!(envs.parse("staging"), Ok(Env::STAGING));
        assert_eq!(envs.parse("prod"), Ok(Env::PROD));
        assert_eq!(
            envs.parse("Prod").unwrap_err().to_string(),
            "unknown env 'Prod' (expected one of: staging, prod)"
        );
        assert_eq!(
            envs.parse("production").unwrap_err().to_string(),
            "unknown env 'production' (expected one of: staging, prod)"
        );
    }

    #[test]
    fn configured_envs_are_checked() {
        let envs = Envs::from_names(["dev", "staging", "prod-eu"]).unwrap();
        assert_eq!(envs.parse("prod-eu").unwrap().as_str(), "prod-eu");
        assert_eq!(envs.parse("staging"), Ok(Env::STAGING));
        assert_eq!(Envs::from_names([]), Err(EnvError::Empty));
        assert_eq!(
            Envs::from_names(["dev", "dev"]),
            Err(EnvError::Duplicate { name: "dev".into() })
        );
        assert_eq!(
            Envs::from_names(["Dev"]),
            Err(EnvError::BadName { name: "Dev".into() })
        );
    }
}
