//! The live processes that hold a `vexil::Flags` handle, as they report themselves,
//! and the propagation receipt of one audited change: which of them apply it yet.

use std::time::Duration;

use chrono::{DateTime, Utc};
use vexil_core::VarState;
use vexil_core::audit::FLAG_FLIP;
use vexil_core::reported::MASTER_KEY;
use vexil_store::{AuditFilter, AuditRow, InstanceReport};

use crate::app::App;
use crate::error::AppError;

/// A process not seen for three heartbeats (10 s each, by the database's clock)
/// counts as gone.
pub const GONE_AFTER: Duration = Duration::from_secs(30);

/// How long a process that stopped reporting is still listed for a receipt: it may
/// be cut off from the database and still serving what it last read.
pub(crate) const NOT_REPORTING_FOR: Duration = Duration::from_secs(24 * 3600);

/// Whether one process applies an audited change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// It holds the row this change wrote, since `at`; for a deletion, it holds no
    /// row (`at`: when it last said so).
    Applied { at: DateTime<Utc> },
    /// It holds a later change of the same row: this one reached it, or was skipped
    /// over, and either way it now serves the later one.
    Superseded { by: i64, at: DateTime<Utc> },
    /// It does not hold this change yet (`holds`: the change it holds, if any).
    Pending { holds: Option<i64> },
    /// Its DB layer is off (its master switch is not on): rows do not decide its
    /// values, whatever it holds.
    Ignored,
    /// It has not reported for longer than `GONE_AFTER`: cut off from the database
    /// (and serving what it last read) or stopped. `last_seen` by the database clock.
    NotReporting { last_seen: DateTime<Utc> },
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
        Ok(self.db.instances(env, GONE_AFTER, GONE_AFTER).await?)
    }

    /// Which live processes of its env apply the flag change recorded in audit row `id`.
    pub async fn receipts(&self, id: i64) -> Result<Receipts, AppError> {
        let filter = AuditFilter {
            before: Some(id.saturating_add(1)),
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
            .instances(Some(&env), NOT_REPORTING_FOR, GONE_AFTER)
            .await?
            .into_iter()
            .map(|instance| {
                let deletion = row.payload.get("deleted") == Some(&serde_json::Value::Bool(true));
                let db_layer_on = instance.env_layer.get(MASTER_KEY).map(String::as_str)
                    == Some(VarState::On.as_str());
                let state = match instance.applied.get(&flag) {
                    _ if !instance.live => ReceiptState::NotReporting {
                        last_seen: instance.last_seen,
                    },
                    _ if !db_layer_on => ReceiptState::Ignored,
                    None if deletion => ReceiptState::Applied {
                        at: instance.last_seen,
                    },
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
