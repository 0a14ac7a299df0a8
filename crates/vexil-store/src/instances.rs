//! `vexil_instances`: what each live process holding a `vexil::Flags` handle reports
//! about itself (migration 0003). Telemetry, not state: written by the library's
//! heartbeat, not audited, pruned when a process has been gone for a day.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::db::{Db, Dialect, on_pool, parse_timestamp};
use crate::error::StoreError;

/// One process's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceReport {
    /// Random, chosen by the process when its handle starts.
    pub id: String,
    pub env: String,
    pub host: String,
    pub pid: i64,
    pub application: String,
    /// The vexil version it links.
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The master switch and each declared flag's variable as this process parsed it:
    /// `unset`, `on`, `off` or `invalid` (never a raw value).
    pub env_layer: BTreeMap<String, String>,
    /// For each flag whose DB row it holds: the row's audit id, and when it applied it.
    pub applied: BTreeMap<String, Receipt>,
}

/// A change a process applied: the audit row behind the row it holds, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub audit_id: i64,
    pub applied_at: DateTime<Utc>,
}

type RawRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
);

impl Db {
    /// Writes `report` over this process's previous one.
    pub async fn report_instance(&self, report: &InstanceReport) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO vexil_instances \
             (id, env, host, pid, application, version, started_at, last_seen, env_layer, applied) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, \
             env_layer = excluded.env_layer, applied = excluded.applied";
        let env_layer = json_text(&report.env_layer)?;
        let applied = json_text(&report.applied)?;
        on_pool!(self, |pool, DB| {
            sqlx::query(SQL)
                .bind(&report.id)
                .bind(&report.env)
                .bind(&report.host)
                .bind(report.pid)
                .bind(&report.application)
                .bind(&report.version)
                .bind(<DB as Dialect>::timestamp(report.started_at))
                .bind(<DB as Dialect>::timestamp(report.last_seen))
                .bind(&env_layer)
                .bind(&applied)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The processes seen since `seen_since`, of `env` if given, by env, application
    /// and host.
    pub async fn instances(
        &self,
        env: Option<&str>,
        seen_since: DateTime<Utc>,
    ) -> Result<Vec<InstanceReport>, StoreError> {
        const SQL: &str = "SELECT id, env, host, pid, application, version, \
             CAST(started_at AS TEXT), CAST(last_seen AS TEXT), env_layer, applied \
             FROM vexil_instances WHERE last_seen >= $1 AND ($2 IS NULL OR env = $2) \
             ORDER BY env, application, host, pid";
        let rows: Vec<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(SQL)
                .bind(<DB as Dialect>::timestamp(seen_since))
                .bind(env)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(instance).collect()
    }

    /// Forgets the processes not seen since `before`.
    pub async fn prune_instances(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM vexil_instances WHERE last_seen < $1";
        Ok(on_pool!(self, |pool, DB| {
            sqlx::query(SQL)
                .bind(<DB as Dialect>::timestamp(before))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt {
        what: format!("an instance report that does not serialise: {error}"),
    })
}

fn instance(raw: RawRow) -> Result<InstanceReport, StoreError> {
    let (id, env, host, pid, application, version, started_at, last_seen, env_layer, applied) = raw;
    let corrupt = |what: &str| StoreError::Corrupt {
        what: format!("the {what} of instance {id}"),
    };
    Ok(InstanceReport {
        started_at: parse_timestamp(&started_at)?,
        last_seen: parse_timestamp(&last_seen)?,
        env_layer: serde_json::from_str(&env_layer).map_err(|_| corrupt("env layer"))?,
        applied: serde_json::from_str(&applied).map_err(|_| corrupt("receipts"))?,
        id,
        env,
        host,
        pid,
        application,
        version,
    })
}
