//! `vexil import` as a pure judgement (docs/import.md): an app's `FLAG_*` config
//! (`config`: `heroku config --json` or dotenv), the flags file, the env's rows and
//! its live processes give a plan: for each variable, the row to write or the row to
//! keep, or why the line is refused. Nothing is written unless no line is refused.
//!
//! The rules, each so that an import never silently changes the value in force:
//! - a name that no declared flag has as its variable, a value that is none of the
//!   on/off spellings, and a variable set twice to different values are refused;
//! - the master switch is not a flag: it is noted (what it says about processes that
//!   run this config), never imported;
//! - where a row exists it stays (it is what is in force when the master switch is
//!   on) and the variable is reported dormant, and whether it differs; `--overwrite`
//!   writes the file's value over a row that differs, as the flip it is;
//! - where no row exists, the row written takes the variable's value, and `from` is
//!   the value in force before: what the env's live processes run (their variable,
//!   else the YAML default), or, when none reports, the file's own value (it is the
//!   config those processes run). An import thus usually changes nothing in force; it
//!   moves the value into a row. Where live processes run another value, the line is
//!   refused (the row would change them), unless `--overwrite`.

mod config;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

pub use config::{Config, ConfigError, Format, Variable, read};

use crate::decl::FlagSet;
use crate::env_var::{MASTER_SWITCH, parse_switch};
use crate::key::{Env, FlagKey};
use crate::reported::VarState;
use crate::risk::Risk;

/// What a plan is judged on, besides the file.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub flags: &'a FlagSet,
    pub env: &'a Env,
    /// The env's rows: flag key → value.
    pub rows: &'a BTreeMap<String, bool>,
    /// The env's live processes: a name for each, and each declared flag's variable
    /// as it reported it (a flag it does not list is unset there).
    pub processes: &'a [(String, BTreeMap<String, VarState>)],
    /// `--overwrite`: write the file's value even where it changes the value in force.
    pub overwrite: bool,
}

/// What an import would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The master switch, if the file sets it.
    pub master: Option<Master>,
    /// One per `FLAG_*` variable that is a declared flag's, in file order.
    pub items: Vec<Item>,
    /// The lines refused: with any, nothing is written.
    pub refused: Vec<Refusal>,
}

/// The master switch as the file sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Master {
    pub line: u64,
    pub state: VarState,
    /// What it means for the processes that run this config.
    pub says: &'static str,
}

/// One flag's variable and what the import does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub key: FlagKey,
    pub variable: String,
    pub line: u64,
    /// The variable's value.
    pub value: bool,
    pub risk: Risk,
    /// The env's row as the plan read it (`None`: no row).
    pub row: Option<bool>,
    #[serde(flatten)]
    pub step: Step,
    /// Why, in words.
    pub why: String,
}

/// Write a row, or keep the one there is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "lowercase")]
pub enum Step {
    /// A row with the variable's value, audited as a flip from `from`.
    Write {
        /// The value in force before (the audit row's `from`).
        from: bool,
        /// Where live processes disagreed (written with `--overwrite` only): how many
        /// run each state; `from` is then the YAML default, as a flip's would be.
        #[serde(skip_serializing_if = "Option::is_none")]
        drift: Option<BTreeMap<VarState, usize>>,
    },
    /// The row stays as it is.
    Keep,
}

/// A line that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub line: u64,
    pub variable: String,
    pub why: String,
}

impl Plan {
    /// The items that write a row.
    pub fn writes(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .filter(|item| matches!(item.step, Step::Write { .. }))
    }

    /// The highest risk among the rows to write: what the role matrix asks of the
    /// import (`Action::Import`); `None` when nothing is written.
    pub fn max_risk(&self) -> Option<Risk> {
        self.writes().map(|item| item.risk).max()
    }
}

/// The plan for `config` against `evidence`.
pub fn plan(config: &Config, evidence: &Evidence<'_>) -> Plan {
    let mut plan = Plan {
        master: None,
        items: Vec::new(),
        refused: Vec::new(),
    };
    // The first line of each name, and its value, to tell a repeat from a conflict.
    let mut seen: HashMap<&str, (u64, Option<&str>)> = HashMap::new();
    for variable in &config.variables {
        let raw = variable.raw.as_deref();
        let refuse = |why: String| Refusal {
            line: variable.line,
            variable: variable.name.clone(),
            why,
        };
        match seen.get(variable.name.as_str()) {
            Some((_, first)) if *first == raw => continue,
            Some((line, _)) => {
                plan.refused.push(refuse(format!(
                    "set again, to another value than on line {line}"
                )));
                continue;
            }
            None => {
                seen.insert(&variable.name, (variable.line, raw));
            }
        }
        let value = raw.and_then(parse_switch);
        if variable.name == MASTER_SWITCH {
            plan.master = Some(master(variable.line, value));
            continue;
        }
        let Some(decl) = evidence
            .flags
            .iter()
            .find(|d| d.key().env_var_name() == variable.name)
        else {
            plan.refused.push(refuse(
                "no flag in the flags file has this variable (a flag's is FLAG_ and its key \
                 upper-cased): declare the flag first, or leave the line out"
                    .to_owned(),
            ));
            continue;
        };
        let Some(value) = value else {
            plan.refused.push(refuse(
                "its value is none of 1, true, on, yes, 0, false, off, no (not shown)".to_owned(),
            ));
            continue;
        };
        match judge(evidence, decl.key(), decl.default(), value) {
            Ok((step, why)) => plan.items.push(Item {
                key: decl.key().clone(),
                variable: variable.name.clone(),
                line: variable.line,
                value,
                risk: decl.risk(),
                row: evidence.rows.get(decl.key().as_str()).copied(),
                step,
                why,
            }),
            Err(why) => plan.refused.push(refuse(why)),
        }
    }
    plan
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

fn master(line: u64, value: Option<bool>) -> Master {
    let (state, says) = match value {
        Some(true) => (
            VarState::On,
            "on: processes that run this config follow the DB rows; not a flag, not imported",
        ),
        Some(false) => (
            VarState::Off,
            "off: processes that run this config ignore the DB rows, so a row written now \
             takes effect there only once it is turned on; not a flag, not imported",
        ),
        None => (
            VarState::Invalid,
            "set to none of the on/off spellings, so the DB layer is off where this config \
             runs; not a flag, not imported",
        ),
    };
    Master { line, state, says }
}

/// The step for one declared flag set to `value`, and why; or why it is refused.
fn judge(
    evidence: &Evidence<'_>,
    key: &FlagKey,
    default: bool,
    value: bool,
) -> Result<(Step, String), String> {
    let env = evidence.env;
    let (want, overwrite) = (on_off(value), evidence.overwrite);
    if let Some(&row) = evidence.rows.get(key.as_str()) {
        let keep = Step::Keep;
        return Ok(if row == value {
            (
                keep,
                format!("the {env} row already says {want}: the variable is dormant"),
            )
        } else if overwrite {
            (
                Step::Write {
                    from: row,
                    drift: None,
                },
                format!(
                    "--overwrite: the {env} row said {}; it now says {want}",
                    on_off(row)
                ),
            )
        } else {
            (
                keep,
                format!(
                    "the {env} row says {} and stays in force: the variable is dormant, and \
                     differs (it still decides where the master switch is off); --overwrite \
                     writes {want}",
                    on_off(row)
                ),
            )
        });
    }
    let processes = evidence.processes;
    if processes.is_empty() {
        return Ok((
            Step::Write {
                from: value,
                drift: None,
            },
            format!(
                "no {env} row, and no live process of {env} reports: the file is taken as \
                 what runs, so nothing changes in force"
            ),
        ));
    }
    let state = |vars: &BTreeMap<String, VarState>| {
        vars.get(key.as_str()).copied().unwrap_or(VarState::Unset)
    };
    let runs = |state: VarState| match state {
        VarState::On => true,
        VarState::Off => false,
        VarState::Unset | VarState::Invalid => default,
    };
    let others: Vec<&str> = processes
        .iter()
        .filter(|(_, vars)| runs(state(vars)) != value)
        .map(|(name, _)| name.as_str())
        .collect();
    let total = processes.len();
    if others.is_empty() {
        return Ok((
            Step::Write {
                from: value,
                drift: None,
            },
            format!(
                "no {env} row; its {total} live process(es) run {want} already, so nothing \
                 changes in force"
            ),
        ));
    }
    let mut named: Vec<&str> = others.iter().copied().take(3).collect();
    if others.len() > 3 {
        named.push("…");
    }
    let differ = format!(
        "{} of {total} live process(es) of {env} run {} ({})",
        others.len(),
        on_off(!value),
        named.join(", ")
    );
    if !overwrite {
        return Err(format!(
            "a row saying {want} would change what they run: {differ}; --overwrite writes it \
             anyway, audited as the change it is"
        ));
    }
    // As a flip judges it: one value in force when every process runs the same, else
    // the YAML default, with the states counted.
    let (from, drift) = if others.len() == total {
        (!value, None)
    } else {
        let mut counts = BTreeMap::new();
        for (_, vars) in processes {
            *counts.entry(state(vars)).or_insert(0) += 1;
        }
        (default, Some(counts))
    };
    Ok((
        Step::Write { from, drift },
        format!("--overwrite: {differ}; they change to {want}"),
    ))
}
