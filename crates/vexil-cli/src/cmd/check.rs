//! `vexil check`: validate the flags file (docs/flags-file.md).
//!
//! Success is one summary line on stdout. Failure is every error on its own stderr
//! line, `file:line:col: flag 'key': message`, and exit 1. `--json` prints either
//! result on stdout. A file that cannot be read is a one-line error and exit 2.
//!
//! The `FLAG_*` variables of the calling process are checked against the file too and
//! reported as warnings (they never change the exit code): on an application host, a
//! variable that names no declared flag or holds an invalid value is a silent bug.

use serde::Serialize;
use vexil_core::decl::RiskCounts;
use vexil_core::{DeclError, EnvSnapshot, FlagDecl, FlagSet};

use crate::Outcome;
use crate::cli::{GlobalArgs, JsonArgs};
use crate::{config, output};

pub(crate) fn run(global: &GlobalArgs, args: &JsonArgs) -> anyhow::Result<Outcome> {
    // The path is the operator's, and heads every error line: escaped, it stays one.
    let source = config::flags_source(global);
    let bytes = config::read_flags_file(&global.flags, &source)?;
    let env_snapshot = config::flag_env();
    match FlagSet::parse(&source, &bytes) {
        Ok(flags) => {
            let warnings = env_warnings(&flags, &env_snapshot);
            if args.json {
                output::json(&Report::Valid {
                    file: &source,
                    valid: true,
                    counts: flags.risk_counts(),
                    flags: flags.iter().collect(),
                    warnings: &warnings,
                })?;
            } else {
                output::line(summary(&source, &flags))?;
            }
            for warning in &warnings {
                output::diagnostic(format_args!("warning: {warning}"));
            }
            Ok(Outcome::Success)
        }
        Err(errors) => {
            if args.json {
                output::json(&Report::Invalid {
                    file: &source,
                    valid: false,
                    errors: errors.errors(),
                })?;
                let n = errors.len();
                let plural = if n == 1 { "" } else { "s" };
                output::diagnostic(format_args!("error: {source}: {n} error{plural}"));
            } else {
                for line in errors.lines() {
                    output::diagnostic(line);
                }
            }
            Ok(Outcome::Refused)
        }
    }
}

/// `--json` output: the flags of a valid file, or the errors of an invalid one.
#[derive(Serialize)]
#[serde(untagged)]
enum Report<'a> {
    Valid {
        file: &'a str,
        valid: bool,
        counts: RiskCounts,
        flags: Vec<&'a FlagDecl>,
        warnings: &'a [String],
    },
    Invalid {
        file: &'a str,
        valid: bool,
        errors: &'a [DeclError],
    },
}

/// `feature_flags.yaml: 12 flags (9 low, 2 medium, 1 high)`.
fn summary(source: &str, flags: &FlagSet) -> String {
    let RiskCounts { low, medium, high } = flags.risk_counts();
    let n = flags.len();
    let plural = if n == 1 { "" } else { "s" };
    format!("{source}: {n} flag{plural} ({low} low, {medium} medium, {high} high)")
}

fn env_warnings(flags: &FlagSet, env_snapshot: &EnvSnapshot) -> Vec<String> {
    let mut warnings = Vec::new();
    if env_snapshot.master_switch() == vexil_core::MasterSwitch::Invalid
        && let Some(var) = env_snapshot.master_var()
    {
        warnings.push(format!("{var}; the DB layer stays off"));
    }
    for var in env_snapshot.unmatched(|key| flags.get(key).is_some()) {
        // Variable names come from outside too: escaped, each warning stays one line.
        let name = vexil_core::message::one_line(var.name());
        warnings.push(format!("{name} is set but overrides no declared flag"));
    }
    for decl in flags {
        if let Some(var) = env_snapshot.get(decl.key()).filter(|var| !var.is_valid()) {
            warnings.push(format!("{var}; flag {} ignores it", decl.key()));
        }
    }
    warnings
}
