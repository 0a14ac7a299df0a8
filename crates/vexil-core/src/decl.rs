//! Flag declarations (docs/flags-file.md): the flags file turned into a `FlagSet`, or every
//! error in it.
//!
//! Parsing has two steps. `node` reads the YAML into a tree that remembers where each
//! node is and fails only on YAML syntax; `validate` walks that tree and collects every
//! declaration error. A file is therefore reported whole, never one error per run.

mod error;
mod node;
mod validate;

use indexmap::IndexMap;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

pub use error::{DeclError, DeclErrorKind, DeclErrors};

use crate::key::FlagKey;
use crate::risk::Risk;

/// The largest flags file vexil reads. A 10,000-flag file with one-line descriptions is
/// about 1.5 MB; anything past this limit is a mistake or an attack, not a flag list.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The deepest nesting the parser follows. A declaration needs 2 levels and a wrong
/// value a few more. Each level costs stack in the parser and in `node` (about 50 KiB
/// in a debug build), so the limit stays low enough that a hostile file is refused
/// with a message even on a 1 MiB thread stack, never a stack overflow.
pub const MAX_DEPTH: usize = 16;

/// The soak used when a declaration does not set `soak_period_hours` (docs/flags-file.md).
pub const DEFAULT_SOAK_PERIOD_HOURS: u32 = 24;

/// The longest soak a declaration may ask for: one year. Anything longer is a typo
/// (hours taken for minutes), and the promotion clock adds it to timestamps.
pub const MAX_SOAK_PERIOD_HOURS: u32 = 24 * 365;

/// A field of a declaration, in the order docs/flags-file.md lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Default,
    SoakPeriodHours,
    Description,
    Risk,
}

impl Field {
    pub const ALL: [Field; 4] = [
        Field::Default,
        Field::SoakPeriodHours,
        Field::Description,
        Field::Risk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Default => "default",
            Field::SoakPeriodHours => "soak_period_hours",
            Field::Description => "description",
            Field::Risk => "risk",
        }
    }

    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }

    /// Only the soak has a default (24 hours).
    pub fn is_required(self) -> bool {
        self != Field::SoakPeriodHours
    }

    /// `default, soak_period_hours, description, risk`, for "expected one of".
    pub fn list() -> String {
        Field::ALL.map(Field::name).join(", ")
    }
}

/// One declared flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagDecl {
    key: FlagKey,
    default: bool,
    soak_period_hours: u32,
    description: String,
    risk: Risk,
}

/// Every declared flag, in file order, looked up by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagSet {
    /// foldhash: applications look flags up by name on hot paths, and the keys are
    /// the operator's own declarations, so SipHash's flooding defence buys nothing.
    decls: IndexMap<FlagKey, FlagDecl, foldhash::fast::RandomState>,
}

/// A key declared twice in a set built in code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flag {} is declared twice", crate::message::quoted(.0.as_str()))]
pub struct DuplicateFlag(pub FlagKey);

/// How many flags of each risk a set declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RiskCounts {
    pub low: usize,
    pub medium: usize,
    pub high: usize,
}

impl FlagDecl {
    /// A declaration made in code, held to the same rules as one in a file (with the
    /// same errors, unlocated).
    pub fn new(
        key: FlagKey,
        default: bool,
        soak_period_hours: u32,
        description: String,
        risk: Risk,
    ) -> Result<FlagDecl, DeclErrorKind> {
        check_key(&key)?;
        if soak_period_hours > MAX_SOAK_PERIOD_HOURS {
            return Err(DeclErrorKind::BadSoakPeriod {
                found: format!("the integer {soak_period_hours}"),
            });
        }
        check_description(&description)?;
        Ok(FlagDecl {
            key,
            default,
            soak_period_hours,
            description,
            risk,
        })
    }

    pub fn key(&self) -> &FlagKey {
        &self.key
    }

    /// The YAML `default`: the value when neither a row nor a variable decides.
    pub fn default(&self) -> bool {
        self.default
    }

    pub fn soak_period_hours(&self) -> u32 {
        self.soak_period_hours
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn risk(&self) -> Risk {
        self.risk
    }
}

impl FlagSet {
    /// Parses a flags file. `source` names it in every error (`feature_flags.yaml:3:5: …`).
    /// A reader need not read past [`MAX_FILE_BYTES`] + 1 bytes: that is enough to be
    /// refused as too large.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<FlagSet, DeclErrors> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(DeclErrors::single(
                source,
                1,
                1,
                DeclErrorKind::TooLarge {
                    limit: MAX_FILE_BYTES,
                },
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let (line, column) = position_of(&bytes[..e.valid_up_to()]);
            DeclErrors::single(source, line, column, DeclErrorKind::NotUtf8)
        })?;
        let root = node::read(text)
            .map_err(|(line, column, kind)| DeclErrors::single(source, line, column, kind))?;
        validate::flag_set(root).map_err(|errors| DeclErrors::new(source, errors))
    }

    /// A set from declarations made in code (tests, generators); a repeated key is
    /// refused as it is in a file.
    pub fn from_decls(decls: impl IntoIterator<Item = FlagDecl>) -> Result<FlagSet, DuplicateFlag> {
        let mut set = FlagSet::default();
        for decl in decls {
            if set.decls.contains_key(&decl.key) {
                return Err(DuplicateFlag(decl.key));
            }
            set.decls.insert(decl.key.clone(), decl);
        }
        Ok(set)
    }

    /// The declaration of `key`, if the file declares it.
    pub fn get(&self, key: &str) -> Option<&FlagDecl> {
        self.decls.get(key)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &FlagDecl> {
        self.decls.values()
    }

    pub fn len(&self) -> usize {
        self.decls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decls.is_empty()
    }

    pub fn risk_counts(&self) -> RiskCounts {
        let mut counts = RiskCounts::default();
        for decl in self.decls.values() {
            match decl.risk {
                Risk::Low => counts.low += 1,
                Risk::Medium => counts.medium += 1,
                Risk::High => counts.high += 1,
            }
        }
        counts
    }

    /// The set written back as a flags file that parses to the same set.
    pub fn to_yaml(&self) -> String {
        // Serialising a map of plain structs cannot fail: there are no non-string keys,
        // no floats and no custom `Serialize` errors in these types.
        serde_saphyr::to_string(self).expect("a FlagSet always serialises to YAML")
    }
}

impl<'a> IntoIterator for &'a FlagSet {
    type Item = &'a FlagDecl;
    type IntoIter = indexmap::map::Values<'a, FlagKey, FlagDecl>;

    fn into_iter(self) -> Self::IntoIter {
        self.decls.values()
    }
}

/// The flags-file shape: `key: {default, soak_period_hours, description, risk}`.
impl Serialize for FlagSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.decls.len()))?;
        for (key, decl) in &self.decls {
            map.serialize_entry(key, &DeclFields(decl))?;
        }
        map.end()
    }
}

struct DeclFields<'a>(&'a FlagDecl);

impl Serialize for DeclFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("FlagDecl", 4)?;
        s.serialize_field("default", &self.0.default)?;
        s.serialize_field("soak_period_hours", &self.0.soak_period_hours)?;
        s.serialize_field("description", &self.0.description)?;
        s.serialize_field("risk", &self.0.risk)?;
        s.end()
    }
}

/// A declared key may be any `FlagKey` but the one whose variable is the master switch.
fn check_key(key: &FlagKey) -> Result<(), DeclErrorKind> {
    if key.env_var_name() == crate::env_var::MASTER_SWITCH {
        return Err(DeclErrorKind::ReservedKey);
    }
    Ok(())
}

/// A description is one line (docs/flags-file.md): some text, and no line break, tab or other
/// control character, which would break the console's table and the CLI's lines
/// (and could drive a terminal).
fn check_description(text: &str) -> Result<(), DeclErrorKind> {
    if text.trim().is_empty() {
        return Err(DeclErrorKind::EmptyDescription);
    }
    if let Some((position, ch)) = text.chars().enumerate().find(|(_, ch)| ch.is_control()) {
        return Err(DeclErrorKind::DescriptionNotOneLine {
            ch,
            position: position + 1,
        });
    }
    Ok(())
}

/// 1-based line and column (in characters) of the end of `prefix`.
fn position_of(prefix: &[u8]) -> (u64, u64) {
    // `prefix` is the valid UTF-8 part before an encoding error.
    let text = std::str::from_utf8(prefix).unwrap_or_default();
    let line = text.matches('\n').count() as u64 + 1;
    let column = text
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count()) as u64
        + 1;
    (line, column)
}
