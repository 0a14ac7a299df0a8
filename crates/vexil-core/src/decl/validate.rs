//! From the located YAML tree to a `FlagSet`, collecting every error on the way.
//!
//! Each check records its error and carries on with the next field or flag, so one
//! run of `vexil check` shows the operator everything there is to fix. The rules a
//! declaration made in code must also meet live in `decl.rs` (`check_key`,
//! `check_description`) and are called from here, so a file and code agree.

use std::collections::HashMap;

use serde_saphyr::Location;

use super::node::{Node, Value};
use super::{
    DEFAULT_SOAK_PERIOD_HOURS, DeclError, DeclErrorKind, Field, FlagDecl, FlagSet,
    MAX_SOAK_PERIOD_HOURS, check_description, check_key,
};
use crate::key::FlagKey;
use crate::risk::Risk;

/// The whole file: a mapping of flag keys to declarations.
pub(super) fn flag_set(root: Node) -> Result<FlagSet, Vec<DeclError>> {
    let mut errors = Vec::new();
    let entries = match root.value {
        Value::Map(entries) => entries,
        // An empty file, or one with only comments, is one null document.
        Value::Null => return Err(vec![error(None, None, DeclErrorKind::Empty)]),
        other => {
            let found = other.describe();
            return Err(vec![error(
                Some(&root.referenced),
                None,
                DeclErrorKind::NotAMapping { found },
            )]);
        }
    };

    let mut set = FlagSet::default();
    let mut first_lines: HashMap<String, u64> = HashMap::with_capacity(entries.len());
    for (key_node, decl_node) in entries {
        let here = &key_node.referenced;
        let text = match key_node.value {
            Value::Str(text) => text,
            other => {
                let found = other.describe();
                errors.push(error(
                    Some(here),
                    None,
                    DeclErrorKind::KeyNotAString { found },
                ));
                continue;
            }
        };
        let mut report = |at: &Location, kind| errors.push(error(Some(at), Some(&text), kind));
        if let Some(&first_line) = first_lines.get(&text) {
            report(here, DeclErrorKind::DuplicateFlag { first_line });
            continue;
        }

        // A bad key does not stop the checks of its fields: both get reported.
        let key = match FlagKey::parse(&text) {
            Ok(key) => match check_key(&key) {
                Ok(()) => Some(key),
                Err(kind) => {
                    report(here, kind);
                    None
                }
            },
            Err(e) => {
                report(here, DeclErrorKind::InvalidKey(e));
                None
            }
        };
        let fields = decl_fields(here, decl_node, &mut report);
        if let (Some(key), Some(fields)) = (key, fields) {
            let decl = FlagDecl {
                key: key.clone(),
                default: fields.default,
                soak_period_hours: fields.soak_period_hours,
                description: fields.description,
                risk: fields.risk,
            };
            set.decls.insert(key, decl);
        }
        first_lines.insert(text, here.line());
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// The checked fields of one declaration.
struct Fields {
    default: bool,
    soak_period_hours: u32,
    description: String,
    risk: Risk,
}

/// One declaration's mapping; `key_at` is where its flag key is. `None` when any
/// field is missing or wrong, each such problem passed to `report`.
fn decl_fields(
    key_at: &Location,
    node: Node,
    report: &mut impl FnMut(&Location, DeclErrorKind),
) -> Option<Fields> {
    let entries = match node.value {
        Value::Map(entries) => entries,
        other => {
            report(
                &node.referenced,
                DeclErrorKind::NotADeclaration {
                    found: other.describe(),
                },
            );
            return None;
        }
    };
    let mut default = None;
    let mut soak_period_hours = None;
    let mut description = None;
    let mut risk = None;
    // The line each field (in `Field::ALL` order) was first seen on: to report a
    // repeat, and to tell a missing field from one that is present but wrong.
    let mut seen: [Option<u64>; 4] = [None; 4];
    let mut wrong = false;
    let mut report = |at: &Location, kind| {
        wrong = true;
        report(at, kind);
    };

    for (name_node, value) in entries {
        let name_at = &name_node.referenced;
        let name = match name_node.value {
            Value::Str(name) => name,
            other => {
                report(
                    name_at,
                    DeclErrorKind::FieldNotAString {
                        found: other.describe(),
                    },
                );
                continue;
            }
        };
        let Some(field) = Field::parse(&name) else {
            report(name_at, DeclErrorKind::UnknownField { field: name });
            continue;
        };
        let index = field as usize;
        if let Some(first_line) = seen[index] {
            report(name_at, DeclErrorKind::DuplicateField { field, first_line });
            continue;
        }
        seen[index] = Some(name_at.line());

        let at = &value.referenced;
        let found = || value.value.describe();
        match (field, &value.value) {
            (Field::Default, Value::Bool(b)) => default = Some(*b),
            (Field::Default, _) => report(at, DeclErrorKind::BadDefault { found: found() }),
            (Field::SoakPeriodHours, Value::Int(hours))
                if (0..=i128::from(MAX_SOAK_PERIOD_HOURS)).contains(hours) =>
            {
                soak_period_hours = u32::try_from(*hours).ok();
            }
            (Field::SoakPeriodHours, _) => {
                report(at, DeclErrorKind::BadSoakPeriod { found: found() });
            }
            (Field::Description, Value::Str(text)) => {
                // A block scalar (`>` or `|`) ends with one line break that YAML adds,
                // not the author: it is not part of the one line.
                let text = text.strip_suffix('\n').unwrap_or(text);
                match check_description(text) {
                    Ok(()) => description = Some(text.to_owned()),
                    Err(kind) => report(at, kind),
                }
            }
            (Field::Description, _) => report(at, DeclErrorKind::BadDescription { found: found() }),
            (Field::Risk, Value::Str(text)) => match Risk::parse(text) {
                Ok(parsed) => risk = Some(parsed),
                Err(_) => report(at, DeclErrorKind::BadRisk { found: found() }),
            },
            (Field::Risk, _) => report(at, DeclErrorKind::BadRisk { found: found() }),
        }
    }

    for field in Field::ALL {
        if field.is_required() && seen[field as usize].is_none() {
            report(key_at, DeclErrorKind::MissingField { field });
        }
    }
    if wrong {
        return None;
    }
    Some(Fields {
        default: default?,
        soak_period_hours: soak_period_hours.unwrap_or(DEFAULT_SOAK_PERIOD_HOURS),
        description: description?,
        risk: risk?,
    })
}

/// An error at `at` (the start of the file when `None`), about flag `key` if known.
fn error(at: Option<&Location>, key: Option<&str>, kind: DeclErrorKind) -> DeclError {
    DeclError {
        line: at.map_or(1, |at| at.line().max(1)),
        column: at.map_or(1, |at| at.column().max(1)),
        key: key.map(str::to_owned),
        kind,
    }
}
