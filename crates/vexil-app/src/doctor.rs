//! `App::doctor`: the runbook's GA checklist and vexil's own health,
//! gathered from what vexil holds and judged by `vexil_core::doctor`. It reads and
//! reports; it changes nothing.
//!
//! A schema that is not current is an answer (the items that need its tables fail and
//! say why), not an error.

use std::collections::{BTreeMap, BTreeSet};

use vexil_core::doctor::{
    Check, CodeEvidence, DbEvidence, EnvEvidence, Evidence, Process, checklist,
};
use vexil_core::{Role, VarState};
use vexil_store::StoreError;

use vexil_core::message::one_line;

use crate::app::App;
use crate::code_scan::CodeScan;
use crate::error::AppError;
use crate::instances::{GONE_AFTER, process_name};

impl App {
    /// Every checklist item, judged now. `code` is what a scan of the source trees
    /// found (`code_scan::scan_trees`); without one, that item is skipped. `gone` are
    /// the variables that must be set on no live process; `app` keeps only that
    /// application's processes (Heroku config is per app).
    ///
    /// A database whose schema is not current is an answer here, not an error: the
    /// items that need its tables fail and say why.
    pub async fn doctor(
        &self,
        code: Option<&CodeScan>,
        gone: &[String],
        app: Option<&str>,
    ) -> Result<Vec<Check>, AppError> {
        let flags = self.flags.load();
        let declared: Vec<(String, String)> = flags
            .iter()
            .map(|d| (d.key().as_str().to_owned(), d.key().env_var_name()))
            .collect();
        let code = code.map(code_evidence);
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
            Ok(()) => Some(self.db_evidence(&declared, app).await?),
            Err(_) => None,
        };
        Ok(checklist(&Evidence {
            declared,
            schema,
            db,
            code,
            gone: gone.to_vec(),
        }))
    }

    async fn db_evidence(
        &self,
        declared: &[(String, String)],
        app: Option<&str>,
    ) -> Result<DbEvidence, AppError> {
        let rows = self.db.flag_rows().await?;
        let flips = self.db.flip_counts().await?;
        let mut envs = Vec::new();
        for env in self.envs.iter() {
            let processes = self
                .db
                .instances(Some(env.as_str()), GONE_AFTER, GONE_AFTER)
                .await?
                .into_iter()
                .filter(|i| app.is_none_or(|app| i.application == app))
                .map(|i| Process {
                    name: process_name(&i),
                    app: one_line(&i.application),
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

/// The scan's findings as the checklist shows them: `path:line:col: FLAG_X (python):
/// the line`, with `dynamic name` beside the language for a name built at run time.
fn code_evidence(scan: &CodeScan) -> CodeEvidence {
    CodeEvidence {
        reads: scan
            .hits
            .iter()
            .map(|hit| {
                format!(
                    "{}:{}:{}: {} ({}{}): {}",
                    one_line(&hit.path.display().to_string()),
                    hit.line,
                    hit.column,
                    one_line(&hit.variable),
                    hit.language.as_str(),
                    if hit.dynamic { ", dynamic name" } else { "" },
                    one_line(&hit.text)
                )
            })
            .collect(),
        grep_only: scan
            .grep_only
            .iter()
            .map(|line| {
                format!(
                    "{}:{}: {}: {}",
                    one_line(&line.path.display().to_string()),
                    line.line,
                    line.why,
                    one_line(&line.text)
                )
            })
            .collect(),
    }
}
