//! The admins of the console vexil adopted (docs/adopt.md): how vexil names them.
//!
//! An old admin keeps its id in `console_audit_log.admin_id`, held by a disabled
//! account of that id (`placeholder_name`), so the runbook's `SELECT … admin_id`
//! still returns it. An audit row written under such an id says so wherever it is
//! shown: `console admin #7 (before vexil)`, and once the id is mapped to a vexil
//! account, `alice (console admin #7, before vexil)`. A row the old console wrote
//! while it ran beside vexil reads `(old console)` instead of `(before vexil)`.

use std::fmt;

/// The first part of a placeholder account's name; the old id follows.
pub const PLACEHOLDER_PREFIX: &str = "console_admin_";

/// The disabled account that holds old admin `id`: `console_admin_7`.
pub fn placeholder_name(id: i64) -> String {
    format!("{PLACEHOLDER_PREFIX}{id}")
}

/// The writer of an audit row under an old console admin's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldAdmin<'a> {
    /// The id the old console gave its admin.
    pub id: i64,
    /// The vexil account it is mapped to, if any.
    pub account: Option<&'a str>,
    /// Whether the row predates the adoption (else the old console wrote it while
    /// it ran beside vexil).
    pub before_vexil: bool,
}

impl fmt::Display for OldAdmin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = if self.before_vexil {
            "before vexil"
        } else {
            "old console"
        };
        match self.account {
            Some(account) => write!(f, "{account} (console admin #{}, {when})", self.id),
            None => write!(f, "console admin #{} ({when})", self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_admin_reads_as_one_mapped_or_not() {
        let check = |account, before_vexil, says: &str| {
            let admin = OldAdmin {
                id: 7,
                account,
                before_vexil,
            };
            assert_eq!(admin.to_string(), says);
        };
        check(None, true, "console admin #7 (before vexil)");
        check(None, false, "console admin #7 (old console)");
        check(
            Some("alice"),
            true,
            "alice (console admin #7, before vexil)",
        );
        check(
            Some("alice"),
            false,
            "alice (console admin #7, old console)",
        );
        assert_eq!(placeholder_name(7), "console_admin_7");
    }
}
