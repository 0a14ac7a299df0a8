//! `App::import`: an app's `FLAG_*` config moved into DB rows (docs/import.md),
//! judged by `vexil_core::import` and written all or nothing.
//!
//! `App::import_plan` gathers the evidence (the env's rows, its live processes'
//! reports) and judges; it writes nothing, for `--dry-run` (an actor given is checked
//! first, and `App::import_clearance` says whether it would need a code).
//! `App::import` reads
//! straight down: the role (`Action::Import`, superadmin) before anything is read;
//! the plan, which ends the import if any line is refused; elevation where a
//! high-risk flag's row is written (a code is spent only then); then one write
//! transaction with each row and its `console.flag.flip` audit row (`"via":
//! "import"`), each row checked to be still what the plan read, or nothing is
//! written.
//!
//! Live processes of `vexil serve` itself are left out of the evidence: they serve
//! the console, not the product, so what they would run is nobody's value in force.

use std::collections::BTreeMap;

use serde_json::json;
use vexil_core::audit::{FLAG_FLIP, FlipPayload, TARGET_FEATURE_FLAG, Via};
use vexil_core::import::{Config, Evidence, Plan, Step, plan};
use vexil_core::{Action, Clearance, Env, FlagKey, Risk, VarState, check_role};
use vexil_store::{Expected, NewAudit};

use crate::app::{Actor, App};
use crate::elevation::{Elevation, StepUp};
use crate::error::AppError;
use crate::instances::{GONE_AFTER, VEXIL_SERVE_APP, process_name};

/// An import as asked for, its env parsed and its file read by the door.
#[derive(Debug, Clone, Copy)]
pub struct Import<'a> {
    pub env: &'a Env,
    pub config: &'a Config,
    /// Write the file's value even where it changes the value in force.
    pub overwrite: bool,
    /// Checked like a flip's (`vexil_core::audit::reason`).
    pub reason: Option<&'a str>,
}

/// What an import did: its plan, and when no line was refused, the rows written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub plan: Plan,
    /// Each row written and its audit row's id, in file order; empty when a line
    /// was refused (then nothing was written) or every row was kept.
    pub written: Vec<(FlagKey, i64)>,
    /// The elevation a code sent with the import made.
    pub elevation: Option<Elevation>,
}

impl App {
    /// What importing `import` would do, writing nothing. With `actor`, its role is
    /// checked first, as the import's would be: a role that may not import learns
    /// nothing of the rows or the processes.
    pub async fn import_plan(
        &self,
        actor: Option<&Actor>,
        import: &Import<'_>,
    ) -> Result<Plan, AppError> {
        if let Some(actor) = actor {
            actor.may(Action::Import(Risk::Low))?;
        }
        self.judge_import(import).await
    }

    /// Whether `actor` may carry out `plan`: at once, or with a TOTP code (a
    /// high-risk flag's row); or why not. Spends nothing.
    pub fn import_clearance(&self, actor: &Actor, plan: &Plan) -> Result<Clearance, AppError> {
        let risk = plan.max_risk().unwrap_or(Risk::Low);
        Ok(check_role(actor.role(), Action::Import(risk))?)
    }

    async fn judge_import(&self, import: &Import<'_>) -> Result<Plan, AppError> {
        let rows: BTreeMap<String, bool> = self
            .db
            .flag_values_in(import.env.as_str())
            .await?
            .into_iter()
            .map(|row| (row.flag_key, row.value))
            .collect();
        let processes: Vec<(String, BTreeMap<String, VarState>)> = self
            .db
            .instances(Some(import.env.as_str()), GONE_AFTER, GONE_AFTER)
            .await?
            .iter()
            .filter(|i| i.application != VEXIL_SERVE_APP)
            .map(|i| {
                let vars = i
                    .env_layer
                    .iter()
                    .map(|(key, state)| (key.clone(), VarState::parse(state)))
                    .collect();
                (process_name(i), vars)
            })
            .collect();
        let flags = self.flags.load();
        Ok(plan(
            import.config,
            &Evidence {
                flags: &flags,
                env: import.env,
                rows: &rows,
                processes: &processes,
                overwrite: import.overwrite,
            },
        ))
    }

    /// Imports `import` as `actor`: every row of the plan with its audit row, in one
    /// transaction, or nothing (a refused line, a role too low, a missing code, a row
    /// changed since the plan read it).
    pub async fn import(
        &self,
        actor: &Actor,
        import: &Import<'_>,
        step_up: StepUp<'_>,
    ) -> Result<Imported, AppError> {
        let reason = vexil_core::audit::reason(import.reason)?;
        let plan = self.import_plan(Some(actor), import).await?;
        let nothing = |plan: Plan, elevation| Imported {
            plan,
            written: Vec::new(),
            elevation,
        };
        let Some(risk) = plan.max_risk().filter(|_| plan.refused.is_empty()) else {
            return Ok(nothing(plan, None));
        };
        let elevation = self.authorize(actor, Action::Import(risk), step_up).await?;
        let written = self.write_import(actor, import, &plan, reason).await?;
        Ok(Imported {
            plan,
            written,
            elevation,
        })
    }

    async fn write_import(
        &self,
        actor: &Actor,
        import: &Import<'_>,
        plan: &Plan,
        reason: Option<&str>,
    ) -> Result<Vec<(FlagKey, i64)>, AppError> {
        let env = import.env;
        let flags = self.flags.load();
        let mut tx = self.db.begin_write().await?;
        let mut written = Vec::new();
        for item in plan.writes() {
            let Step::Write { from, drift } = &item.step else {
                continue;
            };
            let key = item.key.as_str();
            let changed = || AppError::ImportChanged {
                flag: key.to_owned(),
                env: env.to_string(),
            };
            // Still the row the plan judged: none, or (with --overwrite) its value.
            let row = tx.flag_row(key, env.as_str()).await?;
            if row.as_ref().map(|r| r.value) != item.row {
                return Err(changed());
            }
            let payload = FlipPayload {
                flag: &item.key,
                env,
                from: *from,
                to: item.value,
                via: Via::Import,
                reason,
                drift: drift.as_ref(),
                promotion_id: None,
                reconcile: false,
            };
            let audit = NewAudit {
                created_at: self.clock.now(),
                admin_id: Some(actor.id()),
                action: FLAG_FLIP,
                target_type: TARGET_FEATURE_FLAG,
                target_id: key.to_owned(),
                payload: json!(payload),
            };
            let audit_id = tx
                .write_flag(
                    key,
                    env.as_str(),
                    item.value,
                    actor.name(),
                    Expected::of(row.as_ref()),
                    &audit,
                )
                .await?
                .ok_or_else(changed)?;
            written.push((item.key.clone(), audit_id));
        }
        // Dropping `tx` on any error above rolls back every row and audit row.
        tx.commit().await?;
        for (key, _) in &written {
            if let Some(decl) = flags.get(key.as_str()) {
                self.flipped(decl, env, Via::Import).await;
            }
        }
        Ok(written)
    }
}
