//! Reconciliation: where what live processes run differs from what the
//! DB row (and so the audit log) says, and why. After a break-glass change (the
//! runbook's Option B: the master switch off and a `FLAG_*` variable set), the
//! runbook asks for "a reconciling DB row so the audit log reflects the true current
//! state"; this finds the pairs that need one and proposes its value when writing
//! it changes no process's value. It never writes: the operator's flip does,
//! through the flip use case.
//!
//! Only pairs with a DB row are judged: without one, the DB says nothing for a
//! process to differ from (the deprecation table covers variables that decide).
//!
//! `judge` looks at one row and its env's live instances. An instance differs when its
//! master switch is not on (it runs its variable or the default: the runbook's Option
//! B), or when it has not applied the row's latest change within `APPLY_GRACE` (one
//! holding a newer change than the row read is not lagging). The flip it offers,
//! `flip_to`, is the opposite of the row, which is what the instances off the DB layer
//! run; it is `proposed` only when no live instance of the product runs the row's
//! value (`following`), so that writing it changes nothing that runs. `vexil serve`'s
//! own processes do not count there: they follow the row to show it, they do not
//! serve the product (the runbook's likely layout has the console on the DB layer
//! while the app processes run Option B). A lagging change gets no flip: a restart
//! reaches a lagging instance, a flip does not. After the flip, the master switch
//! goes back on where it was off: `reenable` names those applications.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::reported::VarState;

/// How long a live process may take to apply a change before it counts as not
/// applying it: the library's 30 s full read plus a 10 s heartbeat to report it.
pub const APPLY_GRACE: TimeDelta = TimeDelta::seconds(40);

/// The DB row of one flag in one env.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub value: bool,
    /// The audit row of its last change (`None` for a row older than the audit
    /// triggers).
    pub audit_id: Option<i64>,
    /// When that change was made (the audit row's time), by the database's clock.
    pub changed_at: DateTime<Utc>,
}

/// One live process of the env, as it reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    /// The application it reports as.
    pub app: String,
    /// A `vexil serve` process: it does not serve the product.
    pub vexil_server: bool,
    /// Its master switch.
    pub master: VarState,
    /// The flag's variable.
    pub var: VarState,
    /// The audit id of the row it holds for this flag, and the value of that row
    /// when vexil knows it (from the audit row that wrote it).
    pub holds: Option<(i64, Option<bool>)>,
    /// When it last reported, by the database's clock.
    pub last_seen: DateTime<Utc>,
}

/// Why a process runs something other than the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Its master switch is not on: it resolves from its variable or the YAML default
    /// (the runbook's Option B).
    MasterOff,
    /// It has not applied the row's latest change within [`APPLY_GRACE`].
    NotApplied,
}

/// One process out of line with the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergent {
    pub name: String,
    pub app: String,
    /// A `vexil serve` process.
    #[serde(skip)]
    pub vexil_server: bool,
    pub cause: Cause,
    /// What it runs, when vexil can tell.
    pub runs: Option<bool>,
    /// In words: "master switch off, FLAG_DARK_MODE=on", "holds audit row 12, not 15".
    pub detail: String,
}

/// A pair whose processes differ from its row.
///
/// A process that differs runs the opposite of the row, so a reconciling flip can
/// only write that: `flip_to`. It is proposed only when it changes no process's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The row's value: what the DB and the audit log say.
    pub db_value: bool,
    pub live: usize,
    pub divergent: Vec<Divergent>,
    /// Live processes of the product that run the row's value: a reconciling flip
    /// would change what they run (those on the DB layer follow the new row).
    pub following: usize,
    /// `vexil serve` processes that follow the row: they show the new row after a
    /// reconciling flip, and serve no product traffic.
    pub servers_following: usize,
    /// The applications with a process whose master switch is off, to turn back on
    /// after the reconciling flip (the runbook's "re-enable the DB layer").
    pub reenable: Vec<String>,
    /// What a reconciling flip would write (the opposite of the row), when one can
    /// help: some process whose master switch is off runs it. `None` when only
    /// processes that do not apply changes differ: a flip cannot reach them; a
    /// restart (or their database connection) can.
    pub flip_to: Option<bool>,
    /// Whether vexil proposes that flip: only when no live process runs the row's
    /// value, so that it makes the row say what runs and changes nothing that runs.
    pub proposed: bool,
}

/// Whether the processes of one env run what `row` says; `now` by the database's
/// clock (the reports' `last_seen` are).
pub fn judge(
    row: &Row,
    default: bool,
    instances: &[Instance],
    now: DateTime<Utc>,
) -> Option<Finding> {
    let settled = now - row.changed_at >= APPLY_GRACE;
    let mut divergent = Vec::new();
    for instance in instances {
        let from_variable = match instance.var {
            VarState::On => true,
            VarState::Off => false,
            VarState::Unset | VarState::Invalid => default,
        };
        if instance.master != VarState::On {
            if from_variable != row.value {
                divergent.push(Divergent {
                    name: instance.name.clone(),
                    app: instance.app.clone(),
                    vexil_server: instance.vexil_server,
                    cause: Cause::MasterOff,
                    runs: Some(from_variable),
                    detail: format!(
                        "master switch {}, its variable {} gives {}",
                        instance.master.as_str(),
                        instance.var.as_str(),
                        on_off(from_variable)
                    ),
                });
            }
            continue;
        }
        let held = instance.holds.map(|(id, _)| id);
        // Holding a newer change than the row read: written since, not lagging.
        let ahead = matches!((held, row.audit_id), (Some(h), Some(r)) if h > r);
        if held == row.audit_id
            || ahead
            || !settled
            || instance.last_seen - row.changed_at < APPLY_GRACE
        {
            continue;
        }
        let runs = match instance.holds {
            Some((_, value)) => value,
            None => Some(from_variable),
        };
        if runs == Some(row.value) {
            continue;
        }
        let wanted = row
            .audit_id
            .map_or_else(|| "the row".to_owned(), |id| format!("audit row {id}"));
        divergent.push(Divergent {
            name: instance.name.clone(),
            app: instance.app.clone(),
            vexil_server: instance.vexil_server,
            cause: Cause::NotApplied,
            runs,
            detail: match held {
                Some(id) => format!("holds audit row {id}, not {wanted}"),
                None => format!("holds no row, not {wanted}"),
            },
        });
    }
    if divergent.is_empty() {
        return None;
    }
    let servers = instances.iter().filter(|i| i.vexil_server).count();
    let divergent_servers = divergent.iter().filter(|d| d.vexil_server).count();
    let servers_following = servers - divergent_servers;
    let following = instances.len() - divergent.len() - servers_following;
    let flip_to = divergent
        .iter()
        .any(|d| d.cause == Cause::MasterOff)
        .then_some(!row.value);
    let reenable: Vec<String> = divergent
        .iter()
        .filter(|d| d.cause == Cause::MasterOff)
        .map(|d| d.app.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Some(Finding {
        db_value: row.value,
        live: instances.len(),
        following,
        servers_following,
        reenable,
        proposed: flip_to.is_some() && following == 0,
        flip_to,
        divergent,
    })
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn row(value: bool) -> Row {
        Row {
            value,
            audit_id: Some(15),
            changed_at: at(0),
        }
    }

    fn instance(name: &str, master: VarState, var: VarState, holds: Option<i64>) -> Instance {
        Instance {
            name: name.to_owned(),
            app: "raxx-console-prod".to_owned(),
            vexil_server: false,
            master,
            var,
            holds: holds.map(|id| (id, Some(id == 15))),
            last_seen: at(60),
        }
    }

    #[test]
    fn processes_that_hold_the_row_agree() {
        let fleet = [instance("a", VarState::On, VarState::Off, Some(15))];
        assert_eq!(judge(&row(true), false, &fleet, at(60)), None);
    }

    #[test]
    fn option_b_is_found_and_its_value_proposed() {
        let fleet = [
            instance("a", VarState::Off, VarState::On, None),
            instance("b", VarState::Unset, VarState::On, Some(15)),
            instance("c", VarState::On, VarState::Unset, Some(15)),
        ];
        let finding = judge(&row(false), false, &fleet, at(60)).unwrap();
        assert_eq!(finding.flip_to, Some(true));
        // "c" follows the row: a flip would change it, so it is not proposed.
        assert_eq!((finding.following, finding.proposed), (1, false));
        assert_eq!(finding.live, 3);
        let names: Vec<&str> = finding.divergent.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            finding.divergent[0].detail,
            "master switch off, its variable on gives on"
        );
        // Master switch off but its variable gives the row's value: nothing to say
        // about this pair.
        let fleet = [instance("a", VarState::Off, VarState::Unset, None)];
        assert_eq!(judge(&row(false), false, &fleet, at(60)), None);
    }

    #[test]
    fn a_flip_is_proposed_only_when_it_changes_no_process() {
        let everyone_off_db = [
            instance("a", VarState::Off, VarState::On, None),
            instance("b", VarState::Unset, VarState::On, None),
        ];
        let finding = judge(&row(false), false, &everyone_off_db, at(60)).unwrap();
        assert_eq!((finding.flip_to, finding.following), (Some(true), 0));
        assert!(finding.proposed);
        // "b" runs off (its variable), as the row says: a flip to on would change it.
        let split = [
            instance("a", VarState::Off, VarState::On, None),
            instance("b", VarState::Off, VarState::Off, None),
        ];
        let finding = judge(&row(false), true, &split, at(60)).unwrap();
        assert_eq!(finding.divergent.len(), 1);
        assert_eq!((finding.flip_to, finding.following), (Some(true), 1));
        assert!(!finding.proposed);
        // Row on, default off: "b" (invalid variable: the default) runs off.
        let fleet = [
            instance("a", VarState::Off, VarState::On, None),
            instance("b", VarState::Off, VarState::Invalid, None),
        ];
        let finding = judge(&row(true), false, &fleet, at(60)).unwrap();
        assert_eq!(finding.flip_to, Some(false));
    }

    #[test]
    fn a_change_not_applied_after_the_grace_is_found_without_a_proposal() {
        let mut late = instance("a", VarState::On, VarState::Unset, Some(12));
        // Within the grace: still on its way.
        assert_eq!(judge(&row(true), false, &[late.clone()], at(30)), None);
        let finding = judge(&row(true), false, &[late.clone()], at(60)).unwrap();
        // A flip cannot reach a process that does not apply changes.
        assert_eq!((finding.flip_to, finding.proposed), (None, false));
        assert_eq!(finding.divergent[0].cause, Cause::NotApplied);
        assert_eq!(
            finding.divergent[0].detail,
            "holds audit row 12, not audit row 15"
        );
        assert_eq!(finding.divergent[0].runs, Some(false));
        // A process whose last report predates the grace is not judged on it.
        late.last_seen = at(20);
        assert_eq!(judge(&row(true), false, &[late], at(60)), None);
        // Holding an older row with the same value runs what the DB says.
        let same = Instance {
            holds: Some((12, Some(true))),
            ..instance("a", VarState::On, VarState::Unset, None)
        };
        assert_eq!(judge(&row(true), false, &[same], at(60)), None);
        // Holding a change newer than the row read: written since, not lagging.
        let ahead = instance("a", VarState::On, VarState::Unset, Some(16));
        assert_eq!(judge(&row(true), false, &[ahead], at(60)), None);
    }
}
