//! The flags file as an untyped YAML tree in which every node keeps its line and column.
//!
//! serde stops at the first error, but an operator fixing a flags file wants every
//! mistake at once. So the parser only builds this tree (failing on YAML syntax
//! alone), and `validate` walks it and collects every declaration error. Duplicate
//! keys reach the tree too (`DuplicateKeyPolicy::PassThrough`): `validate` reports
//! them with both locations.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{
    Budget, DefaultMessageFormatter, DuplicateKeyPolicy, MergeKeyPolicy, MessageFormatter,
    NonFiniteFloatPolicy, Spanned,
};

use super::{DeclErrorKind, MAX_DEPTH};

/// A YAML node and where it starts.
pub(super) type Node = Spanned<Value>;

#[derive(Debug)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq,
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What a node is, for "found …" in messages: scalars show their value.
    pub(super) fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the integer {i}"),
            // `{:?}` keeps the fraction: "24.0", not "24", next to "must be a whole number".
            Value::Float(x) => format!("the number {x:?}"),
            Value::Str(s) => format!("the string {}", crate::message::quoted(s)),
            Value::Seq => "a sequence".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        // Beyond i128 nothing is a valid field value anyway; keep the magnitude.
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // No field of a declaration is a sequence, so the items are consumed but not kept.
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Value::Seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Reads `text` into a located tree. Only YAML syntax and the parser's safety limits
/// fail here, as `(line, column, error)`.
pub(super) fn read(text: &str) -> Result<Node, (u64, u64, DeclErrorKind)> {
    let mut options = serde_saphyr::Options::default();
    // `yes`, `no`, `on` and `off` are strings in the flags file: `default: yes` is
    // an error to fix, not a boolean to guess (YAML 1.2, docs/flags-file.md#validation).
    options.strict_booleans = true;
    // Likewise `1_000` is YAML 1.1's integer; here it is a string, reported as such.
    options.underscored_numbers_as_strings = true;
    // `.inf` and `.nan` reach `validate` as numbers and are reported against their
    // field, instead of failing the whole file.
    options.non_finite_float_policy = NonFiniteFloatPolicy::PassThrough;
    // Duplicates reach `validate`, which reports them with both lines and goes on.
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    // A merge key (`<<`) lets one declaration silently override another; each flag's
    // fields are written out instead.
    options.merge_keys = MergeKeyPolicy::Error;
    // A tag vexil does not know (`!secret`) would otherwise be ignored without a word.
    options.reject_unsupported_tags = true;
    // Messages are one line each; the caller prints the file and location first.
    options.with_snippet = false;
    // Comments are read past, never kept: not emitting them saves a sixth of the parse.
    options.emit_comments = false;
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    // Room for a too-long flag key to be read and reported as one (the default, 1,024,
    // turns a 2,000-character key into a puzzling syntax error).
    budget.simple_key_max_lookahead = 4096;
    options.budget = Some(budget);

    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((1, 1), |at| (at.line().max(1), at.column().max(1)));
        // The parser's errors are neither `Clone` nor `Eq`, and their `Display` carries
        // a location suffix; vexil keeps the one-line reason and prints the location
        // itself, so nothing the operator needs is lost.
        let message = syntax_message(&error);
        (line, column, DeclErrorKind::Syntax { message })
    })
}

/// The parser's reason, in vexil's words where we have better ones.
fn syntax_message(error: &serde_saphyr::Error) -> String {
    // Alias and snippet wrappers add context we print differently; the reason is inside.
    let mut inner = error;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    match inner {
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "the file holds more than one YAML document (a second '---'); a flags file is one mapping".to_owned()
        }
        serde_saphyr::Error::MergeKeyNotAllowed { .. } => {
            "merge keys (<<) are not allowed in a flags file; write out each flag's fields".to_owned()
        }
        serde_saphyr::Error::Budget { breach: BudgetBreach::Depth { .. }, .. } => depth_message(),
        serde_saphyr::Error::Budget { .. } => "the document exceeds the parser's safety limits \
             (too many nodes, events or alias expansions); a flags file needs nothing of the kind"
            .to_owned(),
        other => match DefaultMessageFormatter.format_message(other).as_ref() {
            // The scanner's own limit on flow nesting (`[[[…`), set to MAX_DEPTH.
            "recursion limit exceeded" => depth_message(),
            reason => crate::message::one_line(reason),
        },
    }
}

fn depth_message() -> String {
    format!("the document nests deeper than {MAX_DEPTH} levels")
}
