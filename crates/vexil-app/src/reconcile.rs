//! Reconciliation after break-glass: `App::reconciliation` finds the
//! (flag, env) pairs whose live processes run something other than the DB row, judged
//! by `vexil_core::reconcile`; `App::reconcile` writes the reconciling row the
//! runbook asks for, through the flip use case (same role matrix, same audit row,
//! marked `"reconcile": true`, a reason required).
//!
//! `App::reconcile_preflight` is what a door checks before a TOTP code.
//! `App::reconcile` checks the role first, requires a reason, judges the pair again
//! (nothing to reconcile, or a value equal to the row's, writes nothing), then runs the
//! flip use case with `expected_from` the row as judged.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use serde_json::Value;
use vexil_core::audit::Via;
use vexil_core::reconcile::{Finding, Instance, Row, judge};
use vexil_core::reported::MASTER_KEY;
use vexil_core::{Action, Env, FlagKey, Risk, VarState};
use vexil_store::{ChangeTimes, InstanceReport};

use crate::app::{Actor, App};
use crate::elevation::StepUp;
use crate::error::AppError;
use crate::flip::{Flip, FlipKind, Flipped};
use crate::instances::{GONE_AFTER, VEXIL_SERVE_APP, process_name, reported_state};
use vexil_core::message::one_line;

/// One pair that needs reconciling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairFinding {
    pub flag: String,
    pub env: Env,
    pub risk: Risk,
    pub finding: Finding,
}

/// Everything out of line, and per env the live processes whose master switch is
/// off (rows do not reach them, whether or not their values differ today).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconciliation {
    pub findings: Vec<PairFinding>,
    pub master_off: Vec<(Env, Vec<String>)>,
}

/// A reconciling flip as asked for, its key and env parsed by the door.
#[derive(Debug, Clone)]
pub struct Reconcile<'a> {
    pub flag: &'a FlagKey,
    pub env: &'a Env,
    /// The value to write, said explicitly; `None` takes the proposed one (and is
    /// refused where nothing is proposed).
    pub to: Option<bool>,
    pub reason: Option<&'a str>,
    pub via: Via,
}

impl App {
    /// Every declared flag with a DB row, in each env (or `only`), judged against
    /// that env's live processes.
    pub async fn reconciliation(&self, only: Option<&Env>) -> Result<Reconciliation, AppError> {
        let rows = self.db.flag_rows().await?;
        let times = self.db.change_times().await?;
        let flags = self.flags.load();
        let mut out = Reconciliation::default();
        let mut written = WrittenValues::default();
        for env in self.envs.iter().filter(|e| only.is_none_or(|o| o == *e)) {
            let live = self
                .db
                .instances(Some(env.as_str()), GONE_AFTER, GONE_AFTER)
                .await?;
            let off = master_off(&live);
            if !off.is_empty() {
                out.master_off.push((env.clone(), off));
            }
            // What each flip the processes applied wrote, read before judging.
            written.read(self, &live).await?;
            for decl in flags.iter() {
                let key = decl.key().as_str();
                let Some(row) = rows
                    .iter()
                    .find(|r| r.flag_key == key && r.env == env.as_str())
                else {
                    continue;
                };
                let instances: Vec<Instance> =
                    live.iter().map(|i| instance(i, key, &written)).collect();
                let row = Row {
                    value: row.value,
                    audit_id: row.audit_id,
                    changed_at: changed_at(&times, key, env),
                };
                if let Some(finding) = judge(&row, decl.default(), &instances, times.now) {
                    out.findings.push(PairFinding {
                        flag: key.to_owned(),
                        env: env.clone(),
                        risk: decl.risk(),
                        finding,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Writes the reconciling row for one pair, the whole sequence: the role (as for
    /// any flip of the flag), a reason, the pair judged again, then elevation where
    /// the flag needs it (a code is spent only on a flip that can happen), then the
    /// flip with `expected_from` the row as judged, so a row changed since is a
    /// conflict.
    pub async fn reconcile(
        &self,
        actor: &Actor,
        r: &Reconcile<'_>,
        step_up: StepUp<'_>,
    ) -> Result<Flipped, AppError> {
        let decl = self.visible_flag(actor, r.flag)?;
        let action = Action::Flip(decl.risk());
        actor.may(action)?;
        let (to, db_value) = self.reconcile_checks(r).await?;
        let elevation = self.authorize(actor, action, step_up).await?;
        let flip = Flip {
            flag: r.flag,
            env: r.env,
            expected_from: Some(db_value),
            to,
            reason: vexil_core::audit::reason(r.reason)?,
            via: r.via,
        };
        let flipped = self
            .write_flip(actor, &decl, &flip, FlipKind::Reconcile)
            .await?;
        Ok(Flipped {
            elevation,
            ..flipped
        })
    }

    /// A reason, a pair that needs a flip, and a value that is the one to write: the
    /// value to write and the row's value, or why not.
    async fn reconcile_checks(&self, r: &Reconcile<'_>) -> Result<(bool, bool), AppError> {
        let env = r.env;
        let refused = |why: String| AppError::ReconcileRefused {
            flag: r.flag.to_string(),
            env: env.to_string(),
            why,
        };
        if vexil_core::audit::reason(r.reason)?.is_none() {
            return Err(refused(
                "a reason is required (it goes into the audit row)".into(),
            ));
        }
        let found = self.reconciliation(Some(env)).await?;
        let Some(pair) = found
            .findings
            .into_iter()
            .find(|p| p.flag == r.flag.as_str())
        else {
            return Err(refused(
                "its live processes run what the DB row says: nothing to reconcile".into(),
            ));
        };
        let f = &pair.finding;
        let on_off = |v: bool| if v { "on" } else { "off" };
        let Some(flip_to) = f.flip_to else {
            return Err(refused(
                "the processes that differ do not apply changes; a flip cannot reach them \
                 (restart them, or check their database connection)"
                    .into(),
            ));
        };
        match r.to {
            Some(to) if to == f.db_value => Err(refused(format!(
                "the DB row already says {}: the processes that differ need their master \
                 switch back on, not a flip",
                on_off(to)
            ))),
            // Not proposed: writing it changes what the processes that follow the row
            // run, so it takes the value said explicitly.
            None if !f.proposed => Err(refused(format!(
                "{} live process(es) run the row's value {}: a flip to {} changes them \
                 too; say the value ({}) to write it anyway",
                f.following,
                on_off(f.db_value),
                on_off(flip_to),
                on_off(flip_to)
            ))),
            _ => Ok((flip_to, f.db_value)),
        }
    }
}

/// The value each `console.flag.flip` row a process applied wrote (`None`: not a
/// flip), by audit id, each read once per reconciliation.
#[derive(Default)]
struct WrittenValues(HashMap<i64, Option<bool>>);

impl WrittenValues {
    /// Reads the rows `live` applied that are not read yet.
    async fn read(&mut self, app: &App, live: &[InstanceReport]) -> Result<(), AppError> {
        for report in live {
            for receipt in report.applied.values() {
                if let Entry::Vacant(slot) = self.0.entry(receipt.audit_id) {
                    let row = app.audit_row(receipt.audit_id).await?;
                    let to = row.and_then(|row| row.payload.get("to").and_then(Value::as_bool));
                    slot.insert(to);
                }
            }
        }
        Ok(())
    }

    fn get(&self, audit_id: i64) -> Option<bool> {
        self.0.get(&audit_id).copied().flatten()
    }
}

/// The names of `live` processes whose master switch is not on: rows do not reach
/// them.
fn master_off(live: &[InstanceReport]) -> Vec<String> {
    live.iter()
        .filter(|i| reported_state(i, MASTER_KEY) != VarState::On)
        .map(process_name)
        .collect()
}

/// One process as the judgement sees it for `key`.
fn instance(report: &InstanceReport, key: &str, written: &WrittenValues) -> Instance {
    Instance {
        name: process_name(report),
        app: one_line(&report.application),
        vexil_server: report.application == VEXIL_SERVE_APP,
        master: reported_state(report, MASTER_KEY),
        var: reported_state(report, key),
        holds: report
            .applied
            .get(key)
            .map(|receipt| (receipt.audit_id, written.get(receipt.audit_id))),
        last_seen: report.last_seen,
    }
}

/// When the row of `key` in `env` last changed, as the change feed remembers it;
/// older than the feed keeps means long settled.
fn changed_at(times: &ChangeTimes, key: &str, env: &Env) -> DateTime<Utc> {
    times
        .last
        .get(&(key.to_owned(), env.as_str().to_owned()))
        .copied()
        .unwrap_or(times.now - chrono::TimeDelta::days(1))
}
