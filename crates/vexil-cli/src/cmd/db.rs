//! `vexil db grants`: the PostgreSQL grants for the two roles that are not the
//! schema's owner (docs/deploy.md). Printed, not run: the owner reads them, runs
//! them with `psql`, and runs them again after each `vexil migrate` (a new table
//! needs its grant; every statement here can be run any number of times).
//!
//! The runtime role gets exactly what vexil's queries need and nothing that changes
//! history: rows of the audit log and its seals may be appended and read, never
//! updated or deleted (the triggers refuse that even to the owner; this role could
//! not switch them off, nor replace a function, nor create a table). The break-glass
//! role gets the runbook's Option A and nothing else: `UPDATE` of `value` and
//! `updated_at` on `console_feature_flags` (with `SELECT`, which an `UPDATE … WHERE`
//! needs). Its change is audited by the triggers, which run as the owner, so it needs
//! no right on the audit log at all.

use anyhow::bail;

use crate::Outcome;
use crate::cli::DbCommand;
use crate::output;

/// Each table vexil reads and writes at run time, with what the runtime role may do
/// to it. Every table of the schema is here: a test compares the list with the
/// migrated database.
pub(crate) const RUNTIME_GRANTS: &[(&str, &str)] = &[
    ("_sqlx_migrations", "SELECT"),
    ("users", "SELECT, INSERT, UPDATE"),
    ("api_tokens", "SELECT, INSERT, UPDATE"),
    ("client_keys", "SELECT, INSERT, UPDATE"),
    ("console_sessions", "SELECT, INSERT, UPDATE, DELETE"),
    ("console_feature_flags", "SELECT, INSERT, UPDATE"),
    ("console_flag_changes", "SELECT, DELETE"),
    ("console_promotions", "SELECT, INSERT, UPDATE"),
    ("vexil_instances", "SELECT, INSERT, UPDATE, DELETE"),
    ("vexil_flag_defaults", "SELECT, INSERT, UPDATE"),
    ("console_audit_log", "SELECT, INSERT"),
    ("console_audit_seals", "SELECT, INSERT"),
    ("console_audit_proofs_since", "SELECT"),
    // Written once by an adoption, as the owner; read to mark the old console's rows.
    ("console_adoption", "SELECT"),
    // `vexil user map-admin` maps (and reserves) old console admins.
    ("console_old_admins", "SELECT, INSERT, UPDATE"),
];

pub(crate) fn run(command: DbCommand) -> anyhow::Result<Outcome> {
    match command {
        DbCommand::Grants {
            runtime,
            break_glass,
            schema,
        } => {
            output::line(grants(&runtime, break_glass.as_deref(), &schema)?)?;
            Ok(Outcome::Success)
        }
    }
}

/// A role or schema name, quoted as a PostgreSQL identifier.
fn ident(what: &str, name: &str) -> anyhow::Result<String> {
    if name.is_empty() || name.len() > 63 || name.chars().any(char::is_control) {
        bail!(
            "{what} {:?}: expected a PostgreSQL name of 1 to 63 printable characters",
            vexil_core::message::one_line(name)
        );
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

fn grants(runtime: &str, break_glass: Option<&str>, schema: &str) -> anyhow::Result<String> {
    let schema = ident("--schema", schema)?;
    let runtime = ident("--runtime", runtime)?;
    let break_glass = break_glass
        .map(|name| ident("--break-glass", name))
        .transpose()?;
    if break_glass.as_ref() == Some(&runtime) {
        bail!("--break-glass must be another role than --runtime");
    }
    let mut out = String::new();
    out.push_str(
        "-- Run as the owner of vexil's schema (the role that runs `vexil migrate`), in\n\
         -- vexil's database; again after each `vexil migrate`. Create the roles first,\n\
         -- e.g. CREATE ROLE name LOGIN PASSWORD '…'; neither may own anything.\n",
    );
    out.push_str(&format!(
        "\n-- The runtime role: `vexil serve --no-migrate`, the CLI, the library.\n\
         REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {runtime};\n\
         GRANT USAGE ON SCHEMA {schema} TO {runtime};\n"
    ));
    for (table, privileges) in RUNTIME_GRANTS {
        out.push_str(&format!(
            "GRANT {privileges} ON {schema}.{table} TO {runtime};\n"
        ));
    }
    if let Some(break_glass) = break_glass {
        out.push_str(&format!(
            "\n-- The break-glass role: the runbook's Option A, audited `via: sql`.\n\
             REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {break_glass};\n\
             GRANT USAGE ON SCHEMA {schema} TO {break_glass};\n\
             GRANT SELECT, UPDATE (value, updated_at) ON {schema}.console_feature_flags TO {break_glass};\n"
        ));
    }
    Ok(out.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_bad_ones_refused() {
        let text = grants("vexil_rt", Some("on\"call"), "public").unwrap();
        assert!(
            text.contains("GRANT SELECT, INSERT ON \"public\".console_audit_log TO \"vexil_rt\";")
        );
        assert!(text.contains(
            "GRANT SELECT, UPDATE (value, updated_at) ON \"public\".console_feature_flags TO \"on\"\"call\";"
        ));
        assert!(grants("", None, "public").is_err());
        assert!(grants("a\nb", None, "public").is_err());
        assert!(grants("same", Some("same"), "public").is_err());
    }
}
