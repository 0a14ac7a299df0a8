//! From the located YAML tree to a `FlagSet`, collecting every error on the way.
//!
//! Each check records its error and carries on with the next field or flag, so one
//! run of `vexil check` shows the operator everything there is to fix.

use std::collections::HashMap;

use super::node::{Node, Value};
use super::{
    DEFAULT_SOAK_PERIOD_HOURS, DeclError, DeclErrorKind, FlagDecl, FlagSet, MAX_SOAK_PERIOD_HOURS,
};
use crate::env_var::MASTER_SWITCH;
use crate::key::FlagKey;
use crate::risk::Risk;

/// The whole file: a mapping of flag keys to declarations.
pub(super) fn flag_set(root: Node) -> Result<FlagSet, Vec<DeclError>> {
    let mut errors = Errors::default();
    let entries = match root.value {
        Value::Map(entries) => entries,
        Value::Null => {
            errors.at_start(DeclErrorKind::Empty);
            return Err(errors.0);
        }
        other => {
            errors.at(
                &root.referenced,
                None,
                DeclErrorKind::NotAMapping {
                    found: other.describe(),
                },
            );
            return Err(errors.0);
        }
    };

    let mut set = FlagSet::default();
    let mut first_lines: HashMap<String, u64> = HashMap::with_capacity(entries.len());
    for (key_node, decl_node) in entries {
        let text = match key_node.value {
            Value::Str(text) => text,
            other => {
                errors.at(
                    &key_node.referenced,
                    None,
                    DeclErrorKind::KeyNotAString {
                        found: other.describe(),
                    },
                );
                continue;
            }
        };
        let here = &key_node.referenced;
        if let Some(&first_line) = first_lines.get(&text) {
            errors.at(
                here,
                Some(&text),
                DeclErrorKind::DuplicateFlag { first_line },
            );
            continue;
        }
        first_lines.insert(text.clone(), here.line());

        // A bad key does not stop the checks of its fields: both get reported.
        let key = match FlagKey::parse(&text) {
            Ok(key) if key.env_var_name() == MASTER_SWITCH => {
                errors.at(here, Some(&text), DeclErrorKind::ReservedKey);
                None
            }
            Ok(key) => Some(key),
            Err(e) => {
                errors.at(here, Some(&text), DeclErrorKind::InvalidKey(e));
                None
            }
        };
        let fields = decl_fields(&text, here, decl_node, &mut errors);
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
    }
    if errors.0.is_empty() {
        Ok(set)
    } else {
        Err(errors.0)
    }
}

/// The checked fields of one declaration.
struct Fields {
    default: bool,
    soak_period_hours: u32,
    description: String,
    risk: Risk,
}

/// One declaration's mapping. `None` when any field is missing or wrong (every such
/// problem is in `errors`).
fn decl_fields(key: &str, key_at: &Location, node: Node, errors: &mut Errors) -> Option<Fields> {
    let entries = match node.value {
        Value::Map(entries) => entries,
        other => {
            errors.at(
                &node.referenced,
                Some(key),
                DeclErrorKind::NotADeclaration {
                    found: other.describe(),
                },
            );
            return None;
        }
    };
    let before = errors.0.len();
    let mut default = None;
    let mut soak_period_hours = None;
    let mut description = None;
    let mut risk = None;
    // The line each field was first seen on, to report a repeat and to tell a missing
    // field from one that is present but wrong.
    let mut seen: [Option<u64>; 4] = [None; 4];

    for (field_node, value) in entries {
        let name = match field_node.value {
            Value::Str(name) => name,
            other => {
                errors.at(
                    &field_node.referenced,
                    Some(key),
                    DeclErrorKind::UnknownField {
                        field: other.describe(),
                    },
                );
                continue;
            }
        };
        let Some(index) = super::FIELDS.iter().position(|f| *f == name) else {
            errors.at(
                &field_node.referenced,
                Some(key),
                DeclErrorKind::UnknownField { field: name },
            );
            continue;
        };
        let field = super::FIELDS[index];
        if let Some(first_line) = seen[index] {
            errors.at(
                &field_node.referenced,
                Some(key),
                DeclErrorKind::DuplicateField { field, first_line },
            );
            continue;
        }
        seen[index] = Some(field_node.referenced.line());

        let at = &value.referenced;
        match field {
            "default" => match value.value {
                Value::Bool(b) => default = Some(b),
                other => errors.at(
                    at,
                    Some(key),
                    DeclErrorKind::BadDefault {
                        found: other.describe(),
                    },
                ),
            },
            "soak_period_hours" => match value.value {
                Value::Int(hours) if (0..=i128::from(MAX_SOAK_PERIOD_HOURS)).contains(&hours) => {
                    soak_period_hours = u32::try_from(hours).ok();
                }
                other => errors.at(
                    at,
                    Some(key),
                    DeclErrorKind::BadSoakPeriod {
                        found: other.describe(),
                    },
                ),
            },
            "description" => match value.value {
                Value::Str(text) if text.trim().is_empty() => {
                    errors.at(at, Some(key), DeclErrorKind::EmptyDescription);
                }
                Value::Str(text) => description = Some(text),
                other => errors.at(
                    at,
                    Some(key),
                    DeclErrorKind::BadDescription {
                        found: other.describe(),
                    },
                ),
            },
            "risk" => match value.value {
                Value::Str(text) if Risk::parse(&text).is_ok() => risk = Risk::parse(&text).ok(),
                other => errors.at(
                    at,
                    Some(key),
                    DeclErrorKind::BadRisk {
                        found: other.describe(),
                    },
                ),
            },
            _ => unreachable!("FIELDS names four fields, all matched above"),
        }
    }

    for (index, field) in super::FIELDS.iter().enumerate() {
        let optional = *field == "soak_period_hours";
        if seen[index].is_none() && !optional {
            errors.at(key_at, Some(key), DeclErrorKind::MissingField { field });
        }
    }
    if errors.0.len() > before {
        return None;
    }
    Some(Fields {
        default: default?,
        soak_period_hours: soak_period_hours.unwrap_or(DEFAULT_SOAK_PERIOD_HOURS),
        description: description?,
        risk: risk?,
    })
}

type Location = serde_saphyr::Location;

#[derive(Default)]
struct Errors(Vec<DeclError>);

impl Errors {
    fn at(&mut self, location: &Location, key: Option<&str>, kind: DeclErrorKind) {
        self.0.push(DeclError {
            line: location.line().max(1),
            column: location.column().max(1),
            key: key.map(str::to_owned),
            kind,
        });
    }

    fn at_start(&mut self, kind: DeclErrorKind) {
        self.0.push(DeclError {
            line: 1,
            column: 1,
            key: None,
            kind,
        });
    }
}
