//! `App::doctor`: the runbook's GA checklist and vexil's own health,
//! gathered from what vexil holds and judged by `vexil_core::doctor`. It reads and
//! reports; it changes nothing.
//!
//! A schema that is not current is an answer (the items that need its tables fail and
//! say why), not an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use vexil_core::doctor::{Check, DbEvidence, EnvEvidence, Evidence, Process, checklist};
use vexil_core::{Role, VarState};
use vexil_store::StoreError;

use vexil_core::message::one_line;

use crate::app::App;
use crate::code_scan::scan_trees;
use crate::error::AppError;
use crate::instances::{GONE_AFTER, process_name};

impl App {
    /// Every checklist item, judged now. `code` are the source trees to scan for
    /// direct reads of `FLAG_*` variables (none: that item is skipped).
    ///
    /// A database whose schema is not current is an answer here, not an error: the
    /// items that need its tables fail and say why.
    pub async fn doctor(&self, code: &[PathBuf]) -> Result<Vec<Check>, AppError> {
        let flags = self.flags.load();
        let declared: Vec<(String, String)> = flags
            .iter()
            .map(|d| (d.key().as_str().to_owned(), d.key().env_var_name()))
            .collect();
        let code = if code.is_empty() {
            None
        } else {
            Some(
                scan_trees(code)?
                    .iter()
                    .map(|hit| {
                        format!(
                            "{}:{}:{}: {} ({}): {}",
                            one_line(&hit.path.display().to_string()),
                            hit.line,
                            hit.column,
                            hit.variable,
                            hit.language.as_str(),
                            one_line(&hit.text)
                        )
                    })
                    .collect(),
            )
        };
        let schema = match self.db.check_migrated().await {
            Ok(()) => Ok(()),
            Err(
                e @ (StoreError::NotMigrated { .. }
                | StoreError::TooNew { .. }
                | StoreError::AdoptionNeeded { .. }),
            ) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        let db = match schema {
            Ok(()) => Some(self.db_evidence(&declared).await?),
            Err(_) => None,
        };
        Ok(checklist(&Evidence {
            declared,
            schema,
            db,
            code,
        }))
    }

    async fn db_evidence(&self, declared: &[(String, String)]) -> Result<DbEvidence, AppError> {
        let rows = self.db.flag_rows().await?;
        let flips = self.db.flip_counts().await?;
        let mut envs = Vec::new();
        for env in self.envs.iter() {
            let processes = self
                .db
                .instances(Some(env.as_str()), GONE_AFTER, GONE_AFTER)
                .await?
                .into_iter()
                .map(|i| Process {
                    name: process_name(&i),
                    layer: i
                        .env_layer
                        .iter()
                        .map(|(k, v)| (k.clone(), VarState::parse(v)))
                        .collect(),
                })
                .collect();
            envs.push(EnvEvidence {
                env: env.clone(),
                processes,
                rows: rows
                    .iter()
                    // An undeclared row has its own item.
                    .filter(|r| r.env == env.as_str())
                    .filter(|r| declared.iter().any(|(key, _)| *key == r.flag_key))
                    .map(|r| r.flag_key.clone())
                    .collect::<BTreeSet<_>>(),
                flips: flips
                    .iter()
                    .filter(|f| f.env == env.as_str())
                    .map(|f| (f.flag.clone(), f.count))
                    .collect::<BTreeMap<_, _>>(),
            });
        }
        let undeclared_rows = rows
            .iter()
            .filter(|r| !declared.iter().any(|(key, _)| *key == r.flag_key))
            .map(|r| (r.flag_key.clone(), r.env.clone()))
            .collect();
        let superadmins = self
            .db
            .users()
            .await?
            .into_iter()
            .filter(|u| !u.disabled && Role::parse(&u.role) == Ok(Role::Superadmin))
            .map(|u| (u.name, u.totp_secret.is_some()))
            .collect();
        // The audit log's chain is a guard too: a row changed, removed or forged
        // fails this item with the first such row (docs/audit-integrity.md).
        let mut broken_guards = self.db.broken_guards().await?;
        let scope = self.proof_scope().await?;
        if let Err(fault) = self
            .db
            .verify_audit(None, &|row| self.proof(row, scope))
            .await?
        {
            broken_guards.push(format!("audit chain: {fault}"));
        }
        Ok(DbEvidence {
            envs,
            broken_guards,
            undeclared_rows,
            superadmins,
        })
    }
}
