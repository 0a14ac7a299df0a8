//! `vexil_instances`: what each live process reports about itself (migration 0003;
//! 0006 adds its language, its transport and the stream's last change it applied).
//! Telemetry, not state: written by the library's heartbeat, or by a server for the
//! processes that follow it; not audited; pruned when a process has been gone for a
//! day.

use std::collections::BTreeMap;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::{Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
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
    /// By the database's clock, so that hosts with skewed clocks compare alike: set
    /// by the database when a report is written (the value given is ignored).
    pub last_seen: DateTime<Utc>,
    /// Read back only: seen within the `live_within` of the query.
    pub live: bool,
    /// The master switch and each declared flag's variable as this process parsed it:
    /// `unset`, `on`, `off` or `invalid` (never a raw value).
    pub env_layer: BTreeMap<String, String>,
    /// For each flag whose DB row it holds: the row's audit id, and when it applied it.
    pub applied: BTreeMap<String, Receipt>,
    /// What the process is written in: `rust` for the library, `python` for the
    /// package, or what a process following a server says.
    pub language: String,
    /// How it reaches vexil.
    pub transport: Transport,
    /// The last change of the server's stream it applied (`Transport::Server` only).
    pub change_id: Option<i64>,
}

/// How a process reaches vexil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// It links the library and reads the database itself.
    Database,
    /// It follows a `vexil serve` (the stream) and reports through it.
    Server,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Database => "database",
            Transport::Server => "server",
        }
    }

    fn parse(text: &str) -> Option<Transport> {
        match text {
            "database" => Some(Transport::Database),
            "server" => Some(Transport::Server),
            _ => None,
        }
    }
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
    bool,
    String,
    String,
    Option<i64>,
);

/// The database's clock, `$S` seconds ago, in the column's format.
fn db_time(sqlite: bool) -> &'static str {
    if sqlite {
        "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || CAST($S AS TEXT) || ' seconds')"
    } else {
        "(now() - make_interval(secs => $S))"
    }
}

impl Db {
    /// Writes `report` over this process's previous one.
    pub async fn report_instance(&self, report: &InstanceReport) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO vexil_instances \
             (id, env, host, pid, application, version, started_at, last_seen, env_layer, applied, \
              language, transport, change_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, {now}, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, \
             env_layer = excluded.env_layer, applied = excluded.applied, \
             change_id = excluded.change_id",
            now = db_time(self.is_sqlite()).replace("$S", "$8")
        ));
        let env_layer = json_text(&report.env_layer)?;
        let applied = json_text(&report.applied)?;
        on_pool!(self, |pool, DB| {
            sqlx::query(sql)
                .bind(&report.id)
                .bind(&report.env)
                .bind(&report.host)
                .bind(report.pid)
                .bind(&report.application)
                .bind(&report.version)
                .bind(<DB as Dialect>::timestamp(report.started_at))
                .bind(0.0_f64)
                .bind(&env_layer)
                .bind(&applied)
                .bind(&report.language)
                .bind(report.transport.as_str())
                .bind(report.change_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The processes seen within `seen_within` (by the database's clock), of `env` if
    /// given, by env, application and host; `live` says which were seen within
    /// `live_within`.
    pub async fn instances(
        &self,
        env: Option<&str>,
        seen_within: Duration,
        live_within: Duration,
    ) -> Result<Vec<InstanceReport>, StoreError> {
        let sql = instances_sql(self.is_sqlite());
        let rows: Vec<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql)
                .bind(env)
                .bind(live_within.as_secs_f64())
                .bind(seen_within.as_secs_f64())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(instance).collect()
    }

    /// Forgets the processes not seen for `gone_for` (by the database's clock).
    pub async fn prune_instances(&self, gone_for: Duration) -> Result<u64, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "DELETE FROM vexil_instances WHERE last_seen < {}",
            db_time(self.is_sqlite()).replace("$S", "$1")
        ));
        Ok(on_pool!(self, |pool, DB| {
            sqlx::query(sql)
                .bind(gone_for.as_secs_f64())
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

impl WriteTx {
    /// [`Db::instances`], inside a write: on the transaction's own connection, so that
    /// a writer never waits for a second pooled connection while holding one.
    pub async fn instances(
        &mut self,
        env: Option<&str>,
        seen_within: Duration,
        live_within: Duration,
    ) -> Result<Vec<InstanceReport>, StoreError> {
        let sql = instances_sql(self.is_sqlite());
        let rows: Vec<RawRow> = on_tx!(self, |tx, DB| {
            sqlx::query_as(sql)
                .bind(env)
                .bind(live_within.as_secs_f64())
                .bind(seen_within.as_secs_f64())
                .fetch_all(&mut **tx)
                .await?
        });
        rows.into_iter().map(instance).collect()
    }
}

fn instances_sql(sqlite: bool) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT id, env, host, pid, application, version, \
         CAST(started_at AS TEXT), CAST(last_seen AS TEXT), env_layer, applied, \
         last_seen >= {live}, language, transport, change_id \
         FROM vexil_instances WHERE last_seen >= {seen} AND ($1 IS NULL OR env = $1) \
         ORDER BY env, application, host, pid",
        live = db_time(sqlite).replace("$S", "$2"),
        seen = db_time(sqlite).replace("$S", "$3"),
    ))
}

fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt {
        what: format!("an instance report that does not serialise: {error}"),
    })
}

fn instance(raw: RawRow) -> Result<InstanceReport, StoreError> {
    let (
        id,
        env,
        host,
        pid,
        application,
        version,
        started_at,
        last_seen,
        env_layer,
        applied,
        live,
        language,
        transport,
        change_id,
    ) = raw;
    let corrupt = |what: &str| StoreError::Corrupt {
        what: format!("the {what} of instance {id}"),
    };
    Ok(InstanceReport {
        started_at: parse_timestamp(&started_at)?,
        last_seen: parse_timestamp(&last_seen)?,
        env_layer: serde_json::from_str(&env_layer).map_err(|_| corrupt("env layer"))?,
        applied: serde_json::from_str(&applied).map_err(|_| corrupt("receipts"))?,
        transport: Transport::parse(&transport).ok_or_else(|| corrupt("transport"))?,
        language,
        change_id,
        id,
        env,
        host,
        pid,
        application,
        version,
        live,
    })
}
