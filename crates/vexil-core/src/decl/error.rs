//! What can be wrong in a flags file, and where: `DeclError` and the set of them.
//!
//! Each error knows its line, column and (when there is one) the flag it concerns, so
//! that `vexil check`, a refused server start and a refused reload all print the same
//! `file:line:col: flag 'key': message` lines.

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use super::Field;
use crate::key::FlagKeyError;
use crate::message::quoted;

/// Every error found in one flags file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclErrors {
    source: String,
    errors: Vec<DeclError>,
}

/// One mistake in a flags file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclError {
    /// 1-based; line and column 1 for errors about the whole file.
    pub line: u64,
    /// 1-based, in characters.
    pub column: u64,
    /// The flag the error concerns, as written in the file (it may be an invalid key).
    pub key: Option<String>,
    pub kind: DeclErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclErrorKind {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the file is not valid UTF-8")]
    NotUtf8,
    /// The YAML itself is broken, or breaks a parser safety limit; `message` is the
    /// parser's one-line reason (see `node::read`).
    #[error("YAML syntax: {message}")]
    Syntax { message: String },
    #[error("the file is empty: declare at least one flag, or write {{}} to declare none")]
    Empty,
    #[error("the file must be a mapping of flag keys to declarations, found {found}")]
    NotAMapping { found: String },
    #[error("a flag key must be a string, found {found}")]
    KeyNotAString { found: String },
    #[error("invalid key: {}", .0.reason())]
    InvalidKey(#[source] FlagKeyError),
    #[error(
        "the key is reserved: its variable {} is the master switch of the DB layer",
        crate::env_var::MASTER_SWITCH
    )]
    ReservedKey,
    #[error("duplicate flag (first declared at line {first_line})")]
    DuplicateFlag { first_line: u64 },
    #[error("the declaration must be a mapping with default, description and risk, found {found}")]
    NotADeclaration { found: String },
    #[error(
        "a field name must be a string, found {found} (expected one of: {})",
        Field::list()
    )]
    FieldNotAString { found: String },
    #[error("unknown field {} (expected one of: {})", quoted(field), Field::list())]
    UnknownField { field: String },
    #[error("duplicate field '{}' (first at line {first_line})", field.name())]
    DuplicateField { field: Field, first_line: u64 },
    #[error("missing field '{}'", field.name())]
    MissingField { field: Field },
    #[error("field 'default' must be a boolean (true or false), found {found}")]
    BadDefault { found: String },
    #[error(
        "field 'soak_period_hours' must be a whole number of hours from 0 to {max}, found {found}",
        max = crate::decl::MAX_SOAK_PERIOD_HOURS
    )]
    BadSoakPeriod { found: String },
    #[error("field 'description' must be a non-empty string, found {found}")]
    BadDescription { found: String },
    #[error("field 'description' is empty")]
    EmptyDescription,
    #[error(
        "field 'description' must be one line of text; it contains {} at position {position}",
        quoted(ch.encode_utf8(&mut [0; 4]))
    )]
    DescriptionNotOneLine { ch: char, position: usize },
    #[error("field 'risk' must be one of low, medium, high, found {found}")]
    BadRisk { found: String },
}

impl DeclErrors {
    pub(crate) fn new(source: &str, mut errors: Vec<DeclError>) -> DeclErrors {
        errors.sort_by_key(|e| (e.line, e.column));
        DeclErrors {
            source: source.to_owned(),
            errors,
        }
    }

    pub(crate) fn single(source: &str, line: u64, column: u64, kind: DeclErrorKind) -> DeclErrors {
        DeclErrors::new(
            source,
            vec![DeclError {
                line,
                column,
                key: None,
                kind,
            }],
        )
    }

    /// The file name the errors are located in, as given to the parser.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn errors(&self) -> &[DeclError] {
        &self.errors
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// One `file:line:col: flag 'key': message` line per error.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.errors
            .iter()
            .map(|e| e.located(&self.source).to_string())
    }
}

impl DeclError {
    /// The error prefixed with `source:line:col:`.
    pub fn located<'a>(&'a self, source: &'a str) -> impl fmt::Display + 'a {
        Located {
            source,
            error: self,
        }
    }
}

struct Located<'a> {
    source: &'a str,
    error: &'a DeclError,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.source, self.error.line, self.error.column, self.error
        )
    }
}

impl fmt::Display for DeclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "flag {}: ", quoted(key))?;
        }
        write!(f, "{}", self.kind)
    }
}

impl fmt::Display for DeclErrors {
    /// All errors, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", error.located(&self.source))?;
        }
        Ok(())
    }
}

impl std::error::Error for DeclErrors {}

/// `{"line", "column", "key", "message"}`: the shape `vexil check --json` prints.
impl Serialize for DeclError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("DeclError", 4)?;
        s.serialize_field("line", &self.line)?;
        s.serialize_field("column", &self.column)?;
        s.serialize_field("key", &self.key)?;
        s.serialize_field("message", &self.kind.to_string())?;
        s.end()
    }
}
