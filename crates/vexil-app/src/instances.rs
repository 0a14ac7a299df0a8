//! The live processes that hold a `vexil::Flags` handle, as they report themselves,
//! and the propagation receipt of one audited change: which of them apply it yet.

use chrono::{DateTime, TimeDelta, Utc};
use vexil_core::audit::FLAG_FLIP;
use vexil_store::{AuditFilter, AuditRow, InstanceReport};

use crate::app::App;
use crate::error::AppError;

/// A process not seen for three heartbeats (10 s each) counts as gone.
pub const GONE_AFTER: TimeDelta = TimeDelta::seconds(30);

/// Whether one live process applies an audited change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// It holds the row this change wrote, since `at`.
    Applied { at: DateTime<Utc> },
    /// It holds a later change of the same row (so this one took effect there, and
    /// was then replaced).
    Superseded { by: i64, at: DateTime<Utc> },
    /// It does not hold this change yet (`holds`: the change it holds, if any).
    Pending { holds: Option<i64> },
}

/// An audited flag change and, for each live process of its env, whether it applies it.
#[derive(Debug, Clone)]
pub struct Receipts {
    pub row: AuditRow,
    pub flag: String,
    pub env: String,
    pub instances: Vec<(InstanceReport, ReceiptState)>,
}

impl App {
    /// The processes seen within `GONE_AFTER`, of `env` if given.
    pub async fn live_instances(&self, env: Option<&str>) -> Result<Vec<InstanceReport>, AppError> {
        if let Some(env) = env {
            self.envs.parse(env)?;
        }
        Ok(self
            .db
            .instances(env, self.clock.now() - GONE_AFTER)
            .await?)
    }

    /// Which live processes of its env apply the flag change recorded in audit row `id`.
    pub async fn receipts(&self, id: i64) -> Result<Receipts, AppError> {
        let filter = AuditFilter {
            before: Some(id + 1),
            limit: 1,
            ..AuditFilter::default()
        };
        let row = self
            .db
            .audit_page(&filter)
            .await?
            .into_iter()
            .find(|row| row.id == id)
            .ok_or(AppError::UnknownAuditRow { id })?;
        let text = |field: &str| {
            row.payload
                .get(field)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let (Some(flag), Some(env)) = (text("flag"), text("env")) else {
            return Err(AppError::NotAFlagChange { id });
        };
        if row.action != FLAG_FLIP {
            return Err(AppError::NotAFlagChange { id });
        }
        let instances = self
            .db
            .instances(Some(&env), self.clock.now() - GONE_AFTER)
            .await?
            .into_iter()
            .map(|instance| {
                let state = match instance.applied.get(&flag) {
                    Some(held) if held.audit_id == id => ReceiptState::Applied {
                        at: held.applied_at,
                    },
                    Some(held) if held.audit_id > id => ReceiptState::Superseded {
                        by: held.audit_id,
                        at: held.applied_at,
                    },
                    held => ReceiptState::Pending {
                        holds: held.map(|h| h.audit_id),
                    },
                };
                (instance, state)
            })
            .collect();
        Ok(Receipts {
            row,
            flag,
            env,
            instances,
        })
    }
}
