//! The live processes that hold a `vexil::Flags` handle, as they report themselves,
//! and the propagation receipt of one audited change: which of them apply it yet.
//!
//! An instance is live while it has reported within `GONE_AFTER` (three heartbeats).
//! For each live instance of the change's env a receipt says `Applied`, `Superseded`
//! (it holds a later change of the same row; a row's audit ids grow in commit order),
//! `Pending`, `Ignored` (its master switch is not on) or `NotReporting`.
//! `App::receipts_for` gives the same for every flip on a page of the audit log, with
//! one read of the instances for the whole page.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vexil_core::VarState;
use vexil_core::audit::FLAG_FLIP;
use vexil_core::message::one_line;
use vexil_core::reported::MASTER_KEY;
use vexil_store::{AuditFilter, AuditRow, InstanceReport};

use crate::app::App;
use crate::error::AppError;
use crate::receipt_summary::ReceiptSummary;

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

/// The application `vexil serve` reports its own library handle as: a process that
/// follows the DB row to show it, not one that serves the product (reconciliation).
pub const VEXIL_SERVE_APP: &str = "vexil serve";

/// How a process is named to an operator: `host pid 123` (the host escaped: it is
/// the process's own word).
pub(crate) fn process_name(instance: &InstanceReport) -> String {
    format!("{} pid {}", one_line(&instance.host), instance.pid)
}

/// How `instance` parsed the variable of `key` (a flag key, or `MASTER_KEY`); a
/// report lists only the variables that are set, so one it does not list is unset.
pub(crate) fn reported_state(instance: &InstanceReport, key: &str) -> VarState {
    instance
        .env_layer
        .get(key)
        .map_or(VarState::Unset, |s| VarState::parse(s))
}

impl App {
    /// One audit row by id, if there is one.
    pub(crate) async fn audit_row(&self, id: i64) -> Result<Option<AuditRow>, AppError> {
        let filter = AuditFilter {
            before: Some(id.saturating_add(1)),
            limit: 1,
            ..AuditFilter::default()
        };
        Ok(self
            .db
            .audit_page(&filter)
            .await?
            .into_iter()
            .find(|row| row.id == id))
    }

    /// The processes seen within `GONE_AFTER`, of `env` if given.
    pub async fn live_instances(&self, env: Option<&str>) -> Result<Vec<InstanceReport>, AppError> {
        if let Some(env) = env {
            self.envs.parse(env)?;
        }
        Ok(self.db.instances(env, GONE_AFTER, GONE_AFTER).await?)
    }

    /// Which live processes of its env apply the flag change recorded in audit row `id`.
    pub async fn receipts(&self, id: i64) -> Result<Receipts, AppError> {
        let row = self
            .audit_row(id)
            .await?
            .ok_or(AppError::UnknownAuditRow { id })?;
        let change = FlagChange::of(&row).ok_or(AppError::NotAFlagChange { id })?;
        let instances = self
            .db
            .instances(Some(&change.env), NOT_REPORTING_FOR, GONE_AFTER)
            .await?
            .into_iter()
            .filter(|instance| change.concerns(instance))
            .map(|instance| {
                let state = change.state_on(&instance);
                (instance, state)
            })
            .collect();
        Ok(Receipts {
            flag: change.flag,
            env: change.env,
            row,
            instances,
        })
    }

    /// The receipt of each flip among `rows` (a page of the audit log), by audit id:
    /// [`App::receipts`] summarised, with one read of the instances for the whole
    /// page rather than one per row. Rows that are not flips have none.
    pub async fn receipts_for(
        &self,
        rows: &[AuditRow],
    ) -> Result<HashMap<i64, ReceiptSummary>, AppError> {
        let changes: Vec<FlagChange> = rows.iter().filter_map(FlagChange::of).collect();
        if changes.is_empty() {
            return Ok(HashMap::new());
        }
        let instances = self
            .db
            .instances(None, NOT_REPORTING_FOR, GONE_AFTER)
            .await?;
        Ok(changes
            .iter()
            .map(|change| {
                let states: Vec<_> = instances
                    .iter()
                    .filter(|instance| instance.env == change.env && change.concerns(instance))
                    .map(|instance| (instance, change.state_on(instance)))
                    .collect();
                let summary = ReceiptSummary::new(change.timed_from(), &states);
                (change.id, summary)
            })
            .collect())
    }
}

impl Receipts {
    /// How many of the processes have seen the change, the slowest, and which have not.
    pub fn summary(&self) -> ReceiptSummary {
        let timed_from = FlagChange::of(&self.row).and_then(|change| change.timed_from());
        let states: Vec<_> = self
            .instances
            .iter()
            .map(|(instance, state)| (instance, *state))
            .collect();
        ReceiptSummary::new(timed_from, &states)
    }
}

/// The flag change an audit row records, as far as a receipt needs it.
struct FlagChange {
    id: i64,
    created_at: DateTime<Utc>,
    flag: String,
    env: String,
    /// The row was deleted (direct SQL): applied by holding no row.
    deletion: bool,
}

impl FlagChange {
    /// `row`'s change, if it is a flip (vexil's or direct SQL's) naming its flag and env.
    fn of(row: &AuditRow) -> Option<FlagChange> {
        if row.action != FLAG_FLIP {
            return None;
        }
        let text = |field: &str| row.payload.get(field)?.as_str().map(str::to_owned);
        Some(FlagChange {
            id: row.id,
            created_at: row.created_at,
            flag: text("flag")?,
            env: text("env")?,
            deletion: row.payload.get("deleted") == Some(&serde_json::Value::Bool(true)),
        })
    }

    /// When the change was made, to time its receipts against; none for a deletion,
    /// whose "applied" time is only when a process last said it holds no row.
    fn timed_from(&self) -> Option<DateTime<Utc>> {
        (!self.deletion).then_some(self.created_at)
    }

    /// Whether the change concerns `instance`: not when it had stopped reporting
    /// before the change was made (a process stopped by a deploy, say, which never
    /// saw it and never will). `last_seen` is by the database's clock and the audit
    /// row's time by vexil's: close enough to tell a stopped process from a cut one.
    fn concerns(&self, instance: &InstanceReport) -> bool {
        instance.live || instance.last_seen >= self.created_at
    }

    /// Whether `instance` (a process of this change's env) applies it.
    fn state_on(&self, instance: &InstanceReport) -> ReceiptState {
        let db_layer_on = reported_state(instance, MASTER_KEY) == VarState::On;
        match instance.applied.get(&self.flag) {
            _ if !instance.live => ReceiptState::NotReporting {
                last_seen: instance.last_seen,
            },
            _ if !db_layer_on => ReceiptState::Ignored,
            None if self.deletion => ReceiptState::Applied {
                at: instance.last_seen,
            },
            Some(held) if held.audit_id == self.id => ReceiptState::Applied {
                at: held.applied_at,
            },
            Some(held) if held.audit_id > self.id => ReceiptState::Superseded {
                by: held.audit_id,
                at: held.applied_at,
            },
            held => ReceiptState::Pending {
                holds: held.map(|h| h.audit_id),
            },
        }
    }
}
