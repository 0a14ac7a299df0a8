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

use vexil_core::audit::Via;
use vexil_core::reconcile::{Finding, Instance, Row, judge};
use vexil_core::reported::MASTER_KEY;
use vexil_core::{Action, Env, FlagKey, Risk, VarState};

use crate::app::{Actor, App};
use crate::elevation::StepUp;
use crate::error::AppError;
use crate::flip::{Flip, FlipKind, Flipped};
use crate::instances::{GONE_AFTER, process_name, reported_state};

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
        let mut values: HashMap<i64, Option<bool>> = HashMap::new();
        for env in self.envs.iter().filter(|e| only.is_none_or(|o| o == *e)) {
            let live = self
                .db
                .instances(Some(env.as_str()), GONE_AFTER, GONE_AFTER)
                .await?;
            let off: Vec<String> = live
                .iter()
                .filter(|i| reported_state(i, MASTER_KEY) != VarState::On)
                .map(process_name)
                .collect();
            if !off.is_empty() {
                out.master_off.push((env.clone(), off));
            }
            for decl in flags.iter() {
                let key = decl.key().as_str();
                let Some(row) = rows
                    .iter()
                    .find(|r| r.flag_key == key && r.env == env.as_str())
                else {
                    continue;
                };
                let changed_at = times
                    .last
                    .get(&(key.to_owned(), env.as_str().to_owned()))
                    .copied()
                    // Older than the feed keeps: long settled.
                    .unwrap_or(times.now - chrono::TimeDelta::days(1));
                let mut instances = Vec::new();
                for i in &live {
                    let holds = match i.applied.get(key) {
                        Some(receipt) => {
                            let id = receipt.audit_id;
                            let value = match values.get(&id) {
                                Some(value) => *value,
                                None => {
                                    let value = self.flip_value(id).await?;
                                    values.insert(id, value);
                                    value
                                }
                            };
                            Some((id, value))
                        }
                        None => None,
                    };
                    instances.push(Instance {
                        name: process_name(i),
                        master: reported_state(i, MASTER_KEY),
                        var: reported_state(i, key),
                        holds,
                        last_seen: i.last_seen,
                    });
                }
                let row = Row {
                    value: row.value,
                    audit_id: row.audit_id,
                    changed_at,
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

    /// The value the `console.flag.flip` row `id` wrote, if it is one.
    async fn flip_value(&self, id: i64) -> Result<Option<bool>, AppError> {
        Ok(self
            .audit_row(id)
            .await?
            .and_then(|row| row.payload.get("to").and_then(serde_json::Value::as_bool)))
    }
}
