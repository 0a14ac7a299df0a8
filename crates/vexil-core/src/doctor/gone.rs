//! The GA item for variables that must be gone from every app, not merely dormant
//! (`vexil doctor --gone FLAG_CONSOLE_FLAG_MGMT`, the feature's own gate): it fails
//! while any live process still has one set, to anything, and where an env has no
//! live process to ask.

use super::{Check, DbEvidence, Outcome, Process, SCHEMA_NOT_CURRENT, variables_unreported};
use crate::reported::VarState;

pub(super) const VARIABLES_GONE: (&str, &str) = (
    "variables_gone",
    "the variables named with --gone are set on no live process",
);

/// `gone` are variable names; `declared` maps a declared flag's variable to the key
/// its processes report it under (an undeclared one is reported under its name).
pub(super) fn variables_gone(
    gone: &[String],
    declared: &[(String, String)],
    db: Option<&DbEvidence>,
) -> Check {
    let (id, title) = VARIABLES_GONE;
    if gone.is_empty() {
        return Check {
            id,
            title,
            outcome: Outcome::Skipped,
            evidence: vec!["no variable named (--gone VAR)".to_owned()],
        };
    }
    let Some(db) = db else {
        return Check::judged(
            id,
            title,
            vec![SCHEMA_NOT_CURRENT.to_owned()],
            String::new(),
        );
    };
    let mut failures = Vec::new();
    let mut asked = 0;
    for env in &db.envs {
        if env.processes.is_empty() {
            failures.push(variables_unreported(env));
            continue;
        }
        asked += env.processes.len();
        for variable in gone {
            let key = declared
                .iter()
                .find(|(_, var)| var == variable)
                .map_or(variable.as_str(), |(key, _)| key.as_str());
            let set_on: Vec<String> = env
                .processes
                .iter()
                .filter(|p| p.state(key) != VarState::Unset)
                .map(named)
                .collect();
            if !set_on.is_empty() {
                failures.push(format!(
                    "{variable} in {}: still set on {}",
                    env.env,
                    set_on.join(", ")
                ));
            }
        }
    }
    Check::judged(
        id,
        title,
        failures,
        format!(
            "{} set on none of {asked} live process(es)",
            gone.join(", ")
        ),
    )
}

fn named(p: &Process) -> String {
    if p.app.is_empty() {
        p.name.clone()
    } else {
        format!("{} of {}", p.name, p.app)
    }
}
