//! `cargo xtask cli-docs`: writes `docs/cli.md` from the binary's clap definitions,
//! so the reference cannot drift from the code; the test below fails when the file
//! is out of date (`cargo xtask cli-docs` then rewrites it).
//!
//! The definitions are compiled in from the binary's own `cli.rs` (a binary crate
//! cannot be a dependency): the same source, not a copy.

use std::fmt::Write as _;
use std::path::Path;

use clap::CommandFactory;

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/vexil-cli/src/cli.rs"]
mod cli;

/// The file, relative to the workspace root.
pub(crate) const PATH: &str = "docs/cli.md";

/// `docs/cli.md` as the definitions say it should read.
pub(crate) fn render() -> String {
    let mut command = cli::Cli::command();
    command.build();
    let mut out = String::new();
    out.push_str(
        "# The `vexil` command line\n\n\
         Generated from the clap definitions (`crates/vexil-cli/src/cli.rs`) by \
         `cargo xtask cli-docs`; a test fails when this file is out of date. \
         `vexil help COMMAND` prints the same at a terminal.\n\n\
         Exit status: 0 when the command did what was asked; 1 when it ran and the \
         answer is no (a refused flip, `check` finding errors); 2 when it could not run \
         (bad usage or input, an unreachable or unmigrated database). Errors are one \
         line on stderr.\n\n",
    );
    out.push_str("## Settings every command reads\n\n");
    let globals: Vec<_> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .collect();
    arguments(&mut out, &globals);
    for sub in command.get_subcommands() {
        section(&mut out, "vexil", sub);
    }
    out
}

fn section(out: &mut String, parent: &str, command: &clap::Command) {
    if command.get_name() == "help" {
        return;
    }
    let name = format!("{parent} {}", command.get_name());
    let _ = writeln!(out, "## `{name}`\n");
    if let Some(about) = command.get_long_about().or_else(|| command.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    let usage = command.clone().render_usage().to_string();
    let _ = writeln!(
        out,
        "```\n{}\n```\n",
        usage.trim_start_matches("Usage: ").trim()
    );
    let own: Vec<_> = command
        .get_arguments()
        .filter(|arg| {
            !arg.is_global_set()
                && !arg.is_hide_set()
                && !["help", "version"].contains(&arg.get_id().as_str())
        })
        .collect();
    arguments(out, &own);
    for sub in command.get_subcommands() {
        section(out, &name, sub);
    }
}

fn arguments(out: &mut String, args: &[&clap::Arg]) {
    if args.is_empty() {
        return;
    }
    out.push_str("| argument | environment | default | meaning |\n|---|---|---|---|\n");
    for arg in args {
        let spelled = match (arg.get_long(), arg.get_value_names()) {
            (Some(long), Some(names)) if arg.get_action().takes_values() => {
                format!("`--{long} {}`", names.join(" "))
            }
            (Some(long), _) if arg.get_action().takes_values() => {
                format!("`--{long} {}`", arg.get_id().as_str().to_uppercase())
            }
            (Some(long), _) => format!("`--{long}`"),
            (None, _) => format!("`{}`", arg.get_id().as_str().to_uppercase()),
        };
        let env = arg
            .get_env()
            .map_or(String::new(), |env| format!("`{}`", env.to_string_lossy()));
        let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if default.is_empty() || switch {
            String::new()
        } else {
            format!("`{}`", default.join(" "))
        };
        let mut help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default()
            .replace('\n', " ");
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !values.is_empty() && arg.get_action().takes_values() {
            let _ = write!(help, " (one of {})", values.join(", "));
        }
        if arg.is_required_set() {
            help.insert_str(0, "Required. ");
        }
        let _ = writeln!(out, "| {spelled} | {env} | {default} | {} |", help.trim());
    }
    out.push('\n');
}

/// Writes the file under `root`.
pub(crate) fn write(root: &Path) -> anyhow::Result<()> {
    std::fs::write(root.join(PATH), render())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_cli_md_is_current() {
        let root = crate::tidy::workspace_root();
        let written = std::fs::read_to_string(root.join(super::PATH)).unwrap_or_default();
        assert!(
            written == super::render(),
            "{} is out of date: run `cargo xtask cli-docs`",
            super::PATH
        );
    }
}
