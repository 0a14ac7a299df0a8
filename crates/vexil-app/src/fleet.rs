//! `App::fleet`: each env's live processes as they report themselves, and where the
//! processes of one env disagree (the fleet): their master switch, a flag's
//! variable, or the change of a row they hold. `EnvFleet::new` decides that from the
//! reports alone, so it is tested without a database; the console only formats it.
//!
//! An `EnvFleet`'s `Display` is the env's one-line summary.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use vexil_core::env_var::MASTER_SWITCH;
use vexil_core::reported::MASTER_KEY;
use vexil_core::{Drift, FlagKey, FlagSet, VarState, reported_layer};
use vexil_store::{InstanceReport, Receipt};

use crate::app::App;
use crate::error::AppError;
use crate::instances::{GONE_AFTER, reported_state};

/// One env's live processes, and what they disagree about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFleet {
    pub env: String,
    pub instances: Vec<FleetInstance>,
    /// Variables the processes disagree about, the master switch (under
    /// [`MASTER_KEY`]) first, as `vexil_core::reported_layer` finds them.
    pub vars: Vec<Drift>,
    /// Rows the processes hold at different changes.
    pub rows: Vec<RowDrift>,
}

/// One live process, and its part in its env's drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetInstance {
    pub report: InstanceReport,
    /// Its master switch, as it parsed it.
    pub master: VarState,
    /// The change it applied last, of any row: the flag and the receipt.
    pub last_applied: Option<(String, Receipt)>,
    /// The variables to show for it: each declared flag's that it has set, and each
    /// one the env drifts on (set or not here), in the flags file's order.
    pub vars: Vec<ReportedVar>,
    /// The rows whose newest change it does not hold yet: the flag and the change it
    /// holds, if any.
    pub behind: Vec<(String, Option<i64>)>,
}

/// A flag's variable on one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedVar {
    /// The flag key.
    pub key: String,
    /// `FLAG_<KEY>`.
    pub variable: String,
    pub state: VarState,
    /// The env's processes disagree about this variable.
    pub drift: bool,
}

/// A row (a flag's, in this env) that the env's processes hold at different changes:
/// the ones without the newest have not applied it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDrift {
    pub flag: String,
    /// The newest change (audit id) a process holds. Audit ids of one row grow in
    /// commit order, so the others are behind it.
    pub newest: i64,
    /// How many processes do not hold it.
    pub behind: usize,
}

impl App {
    /// Every env's live processes (`GONE_AFTER`), configured envs first and in their
    /// order (one with no live process too), then any other env a process reports.
    pub async fn fleet(&self) -> Result<Vec<EnvFleet>, AppError> {
        let mut by_env: BTreeMap<String, Vec<InstanceReport>> = BTreeMap::new();
        for report in self.db.instances(None, GONE_AFTER, GONE_AFTER).await? {
            by_env.entry(report.env.clone()).or_default().push(report);
        }
        let flags = self.flags.load();
        let mut fleet: Vec<EnvFleet> = self
            .envs
            .iter()
            .map(|env| {
                let reports = by_env.remove(env.as_str()).unwrap_or_default();
                EnvFleet::new(env.to_string(), &flags, reports)
            })
            .collect();
        fleet.extend(
            by_env
                .into_iter()
                .map(|(env, reports)| EnvFleet::new(env, &flags, reports)),
        );
        Ok(fleet)
    }
}

impl EnvFleet {
    /// The fleet of `env` from its processes' `reports`, against the declarations
    /// `flags` (a variable is judged only for a declared flag, as everywhere else).
    pub fn new(env: String, flags: &FlagSet, reports: Vec<InstanceReport>) -> EnvFleet {
        let layers: Vec<_> = reports.iter().map(|r| &r.env_layer).collect();
        let (_, vars) = reported_layer(flags, &layers);
        let drifting: BTreeSet<&str> = vars.iter().map(|d| d.key.as_str()).collect();
        let rows = row_drift(&reports);
        let instances = reports
            .into_iter()
            .map(|report| {
                let state = |key: &str| reported_state(&report, key);
                let vars = flags
                    .iter()
                    .map(vexil_core::FlagDecl::key)
                    .filter_map(|key| {
                        let drift = drifting.contains(key.as_str());
                        let state = state(key.as_str());
                        (drift || state != VarState::Unset).then(|| ReportedVar {
                            key: key.to_string(),
                            variable: key.env_var_name(),
                            state,
                            drift,
                        })
                    })
                    .collect();
                let behind = rows
                    .iter()
                    .filter_map(|row| {
                        let holds = report.applied.get(&row.flag).map(|r| r.audit_id);
                        (holds != Some(row.newest)).then(|| (row.flag.clone(), holds))
                    })
                    .collect();
                let last_applied = report
                    .applied
                    .iter()
                    .max_by_key(|(_, receipt)| (receipt.applied_at, receipt.audit_id))
                    .map(|(flag, receipt)| (flag.clone(), *receipt));
                FleetInstance {
                    master: state(MASTER_KEY),
                    last_applied,
                    vars,
                    behind,
                    report,
                }
            })
            .collect();
        EnvFleet {
            env,
            instances,
            vars,
            rows,
        }
    }

    /// The processes disagree about the master switch: rows decide values on some
    /// of them and not on others.
    pub fn master_drifts(&self) -> bool {
        self.vars.iter().any(|drift| drift.key == MASTER_KEY)
    }

    /// The processes agree on everything.
    pub fn agrees(&self) -> bool {
        self.vars.is_empty() && self.rows.is_empty()
    }
}

impl fmt::Display for EnvFleet {
    /// `3 live instances; drift: FLAG_DARK_MODE on 2, unset 1; dark_mode change #14
    /// not applied by 1`, or `no live instance`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.instances.len() {
            0 => return f.write_str("no live instance"),
            1 => f.write_str("1 live instance")?,
            n => write!(f, "{n} live instances")?,
        }
        if self.agrees() {
            return f.write_str("; no drift");
        }
        f.write_str("; drift: ")?;
        let mut parts = Vec::new();
        for drift in &self.vars {
            let variable = if drift.key == MASTER_KEY {
                MASTER_SWITCH.to_owned()
            } else {
                FlagKey::parse(&drift.key).map_or_else(|_| drift.key.clone(), |k| k.env_var_name())
            };
            // The most common state first: the odd ones out read last.
            let mut states: Vec<(VarState, usize)> =
                drift.states.iter().map(|(s, n)| (*s, *n)).collect();
            states.sort_by_key(|(state, n)| (Reverse(*n), *state));
            let states: Vec<String> = states
                .iter()
                .map(|(state, n)| format!("{} {n}", state.as_str()))
                .collect();
            parts.push(format!("{variable} {}", states.join(", ")));
        }
        for row in &self.rows {
            parts.push(format!(
                "{} change #{} not applied by {}",
                row.flag, row.newest, row.behind
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Each row that the processes hold at different changes (holding none counts as
/// not holding the newest, as a receipt counts it pending).
fn row_drift(reports: &[InstanceReport]) -> Vec<RowDrift> {
    let flags: BTreeSet<&String> = reports.iter().flat_map(|r| r.applied.keys()).collect();
    flags
        .into_iter()
        .filter_map(|flag| {
            let held: Vec<Option<i64>> = reports
                .iter()
                .map(|r| r.applied.get(flag).map(|receipt| receipt.audit_id))
                .collect();
            let newest = held.iter().flatten().copied().max()?;
            let behind = held.iter().filter(|id| **id != Some(newest)).count();
            (behind > 0).then(|| RowDrift {
                flag: flag.clone(),
                newest,
                behind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};
    use vexil_store::Transport;

    use super::*;

    const FLAGS: &[u8] = b"dark_mode:\n  default: false\n  description: Dark.\n  risk: low\n\
new_checkout:\n  default: false\n  description: Checkout.\n  risk: high\n";

    fn report(
        application: &str,
        layer: &[(&str, &str)],
        applied: &[(&str, i64)],
    ) -> InstanceReport {
        let at = |id: i64| DateTime::UNIX_EPOCH + TimeDelta::seconds(id);
        InstanceReport {
            id: application.to_owned(),
            env: "staging".to_owned(),
            host: "h".to_owned(),
            pid: 1,
            application: application.to_owned(),
            version: "0.1.0".to_owned(),
            started_at: DateTime::UNIX_EPOCH,
            last_seen: DateTime::UNIX_EPOCH,
            live: true,
            env_layer: layer
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            applied: applied
                .iter()
                .map(|(flag, id)| {
                    let receipt = Receipt {
                        audit_id: *id,
                        applied_at: at(*id),
                    };
                    ((*flag).to_owned(), receipt)
                })
                .collect(),
            language: "rust".to_owned(),
            transport: Transport::Database,
            change_id: None,
        }
    }

    #[track_caller]
    fn check(reports: Vec<InstanceReport>, summary: &str) -> EnvFleet {
        let flags = FlagSet::parse("f.yaml", FLAGS).unwrap();
        let fleet = EnvFleet::new("staging".to_owned(), &flags, reports);
        assert_eq!(fleet.to_string(), summary);
        fleet
    }

    #[test]
    fn the_processes_of_an_env_agree_or_drift() {
        let on = [(MASTER_KEY, "on")];
        check(vec![], "no live instance");
        let one = check(
            vec![report("web", &on, &[("dark_mode", 4), ("new_checkout", 7)])],
            "1 live instance; no drift",
        );
        let web = &one.instances[0];
        assert_eq!(web.master, VarState::On);
        assert_eq!(
            web.last_applied
                .as_ref()
                .map(|(f, r)| (f.as_str(), r.audit_id)),
            Some(("new_checkout", 7))
        );
        assert!(web.vars.is_empty() && web.behind.is_empty(), "{web:?}");

        // The variable set on two processes and not on the third.
        let dark = [(MASTER_KEY, "on"), ("dark_mode", "on")];
        let fleet = check(
            vec![
                report("a", &dark, &[]),
                report("b", &dark, &[]),
                report("c", &on, &[]),
            ],
            "3 live instances; drift: FLAG_DARK_MODE on 2, unset 1",
        );
        assert!(!fleet.master_drifts());
        let shown: Vec<(VarState, bool)> = fleet
            .instances
            .iter()
            .flat_map(|i| i.vars.iter().map(|v| (v.state, v.drift)))
            .collect();
        assert_eq!(
            shown,
            [
                (VarState::On, true),
                (VarState::On, true),
                (VarState::Unset, true)
            ],
            "the drifting variable is shown on every process, even where unset"
        );

        // The master switch differs; one process has not applied the newest change
        // of a row (another holds no row yet).
        let off = [(MASTER_KEY, "unset"), ("new_checkout", "off")];
        let fleet = check(
            vec![
                report("a", &on, &[("dark_mode", 9)]),
                report("b", &on, &[("dark_mode", 5)]),
                report("c", &off, &[]),
            ],
            "3 live instances; drift: FLAG_CONSOLE_FEATURE_FLAGS_DB on 2, unset 1; FLAG_NEW_CHECKOUT unset 2, off 1; dark_mode change #9 not applied by 2",
        );
        assert!(fleet.master_drifts());
        let behind: Vec<&[(String, Option<i64>)]> = fleet
            .instances
            .iter()
            .map(|i| i.behind.as_slice())
            .collect();
        assert_eq!(
            behind,
            [
                &[][..],
                &[("dark_mode".to_owned(), Some(5))][..],
                &[("dark_mode".to_owned(), None)][..],
            ]
        );
    }
}
