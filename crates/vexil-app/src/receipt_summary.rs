//! `ReceiptSummary`: a flag change's propagation receipt in one line, "seen by 11 of
//! 12 instances, slowest 41 ms; missing: host-7 pid 123", the same words in the
//! console's audit log and in `vexil audit show`.
//!
//! An instance whose master switch is off ignores rows and is not counted in "of".

use std::fmt;

use chrono::{DateTime, Utc};
use vexil_store::InstanceReport;

use crate::instances::{ReceiptState, process_name};

/// How far one change has propagated among the processes of its env.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptSummary {
    /// Processes that apply it or a later change of the same row.
    pub seen: usize,
    /// Processes whose values the change decides: those seen and those missing. The
    /// ones ignoring rows are not counted; no change can reach their values.
    pub of: usize,
    /// The longest time from the audit row to a process applying it, over those that
    /// hold it now (a later change hides when the earlier one arrived); none for a
    /// deletion or when none holds it.
    pub slowest_ms: Option<i64>,
    /// `host pid N` of each process that does not hold it yet, or stopped reporting.
    pub missing: Vec<String>,
    /// `host pid N` of each process whose master switch is off: rows decide nothing
    /// there.
    pub ignoring: Vec<String>,
}

impl ReceiptSummary {
    /// The summary of `states`, each process's state of one change; `made_at`, when
    /// the change was made (its audit row), to time the receipts against, if they can
    /// be timed.
    pub fn new(made_at: Option<DateTime<Utc>>, states: &[(&InstanceReport, ReceiptState)]) -> Self {
        let mut summary = ReceiptSummary::default();
        for (instance, state) in states {
            let label = || process_name(instance);
            match *state {
                ReceiptState::Applied { at } => {
                    summary.seen += 1;
                    if let Some(made_at) = made_at {
                        // Hosts' clocks differ a little: a receipt stamped before its
                        // audit row took no time, not negative time.
                        let took = (at - made_at).num_milliseconds().max(0);
                        summary.slowest_ms = summary.slowest_ms.max(Some(took));
                    }
                }
                ReceiptState::Superseded { .. } => summary.seen += 1,
                ReceiptState::Pending { .. } => summary.missing.push(label()),
                ReceiptState::NotReporting { .. } => {
                    summary.missing.push(format!("{} (not reporting)", label()));
                }
                ReceiptState::Ignored => summary.ignoring.push(label()),
            }
        }
        summary.of = summary.seen + summary.missing.len();
        summary
    }

    /// Every process that applies rows has seen it.
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

impl fmt::Display for ReceiptSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.of, self.ignoring.is_empty()) {
            (0, true) => f.write_str("no instance reports")?,
            (0, false) => f.write_str("no instance applies rows")?,
            (of, _) => {
                let noun = if of == 1 { "instance" } else { "instances" };
                write!(f, "seen by {} of {of} {noun}", self.seen)?;
                if let Some(ms) = self.slowest_ms {
                    write!(f, ", slowest {ms} ms")?;
                }
            }
        }
        if !self.missing.is_empty() {
            write!(f, "; missing: {}", self.missing.join(", "))?;
        }
        if !self.ignoring.is_empty() {
            write!(f, "; ignores rows: {}", self.ignoring.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn instance(host: &str, pid: i64) -> InstanceReport {
        InstanceReport {
            id: format!("{host}-{pid}"),
            env: "staging".to_owned(),
            host: host.to_owned(),
            pid,
            application: "web".to_owned(),
            version: "0.1.0".to_owned(),
            started_at: DateTime::UNIX_EPOCH,
            last_seen: DateTime::UNIX_EPOCH,
            live: true,
            env_layer: Default::default(),
            applied: Default::default(),
            language: "rust".to_owned(),
            transport: vexil_store::Transport::Database,
            change_id: None,
        }
    }

    #[track_caller]
    fn check(
        made_at: Option<DateTime<Utc>>,
        states: &[(&InstanceReport, ReceiptState)],
        text: &str,
    ) {
        assert_eq!(ReceiptSummary::new(made_at, states).to_string(), text);
    }

    #[test]
    fn a_receipt_in_one_line() {
        let made = DateTime::UNIX_EPOCH + TimeDelta::days(1);
        let after = |ms: i64| made + TimeDelta::milliseconds(ms);
        let (a, b, c, d, e) = (
            instance("web-1", 11),
            instance("web-2", 12),
            instance("host-7", 123),
            instance("batch", 9),
            instance("cut\noff", 5),
        );
        let applied = |ms| ReceiptState::Applied { at: after(ms) };
        check(Some(made), &[], "no instance reports");
        check(
            Some(made),
            &[(&a, applied(3))],
            "seen by 1 of 1 instance, slowest 3 ms",
        );
        check(
            Some(made),
            &[
                (&a, applied(12)),
                (&b, applied(41)),
                (&c, ReceiptState::Pending { holds: Some(1) }),
            ],
            "seen by 2 of 3 instances, slowest 41 ms; missing: host-7 pid 123",
        );
        // A later change hides when this one arrived; a deletion is not timed; a
        // receipt stamped early by a skewed clock took no time.
        let superseded = ReceiptState::Superseded {
            by: 9,
            at: after(5_000),
        };
        check(Some(made), &[(&a, superseded)], "seen by 1 of 1 instance");
        check(None, &[(&a, applied(12))], "seen by 1 of 1 instance");
        check(
            Some(made),
            &[(&a, applied(-40))],
            "seen by 1 of 1 instance, slowest 0 ms",
        );
        // Ignoring rows is not missing; a process cut off is, and says so.
        check(
            Some(made),
            &[
                (&a, applied(7)),
                (&d, ReceiptState::Ignored),
                (&e, ReceiptState::NotReporting { last_seen: made }),
            ],
            r"seen by 1 of 2 instances, slowest 7 ms; missing: cut\noff pid 5 (not reporting); ignores rows: batch pid 9",
        );
        check(
            Some(made),
            &[(&d, ReceiptState::Ignored)],
            "no instance applies rows; ignores rows: batch pid 9",
        );
        let summary = ReceiptSummary::new(Some(made), &[(&a, applied(1)), (&b, applied(2))]);
        assert_eq!(
            (
                summary.seen,
                summary.of,
                summary.slowest_ms,
                summary.complete()
            ),
            (2, 2, Some(2), true)
        );
    }
}
