//! `console_audit_log`: appending a row (only inside a `WriteTx`, with the change it
//! records) and reading pages of it, newest first.
//!
//! Every row vexil appends carries the proof of the `AuditProver` its `Db` was given. A
//! page is newest first by id (`before` and `after` are the cursors); only the filters
//! that are set become conditions, each exact one with an `(column, id)` index to walk,
//! so a page costs the same in a log of any size. The substring filters (the console's
//! flag and account boxes) cannot use an index: they read rows newest first until the
//! page is full.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::db::{AuditProver, Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
use crate::error::StoreError;

/// A row to append. It is written by the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub created_at: DateTime<Utc>,
    /// The account that acted; `None` only for changes made outside vexil.
    pub admin_id: Option<i64>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub payload: Value,
}

/// A stored row, with the name of its account when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub admin_id: Option<i64>,
    pub admin_name: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub payload: Value,
    /// vexil's proof that it wrote the row, if it carries one (docs/audit-integrity.md).
    pub mac: Option<Vec<u8>>,
    /// Set when `admin_id` is an admin of the console vexil adopted (docs/adopt.md).
    pub old_admin: Option<OldAdminOf>,
}

/// The old console admin an audit row was written under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldAdminOf {
    /// The vexil account the old id is mapped to (`vexil user map-admin`), if any.
    pub account: Option<String>,
    /// The row predates the adoption (else the old console wrote it beside vexil).
    pub before_vexil: bool,
}

impl AuditRow {
    /// Who wrote the row, when it was an old console admin: `console admin #7 (before
    /// vexil)`, or with the account it is mapped to.
    pub fn old_admin(&self) -> Option<vexil_core::old_admin::OldAdmin<'_>> {
        let (Some(id), Some(old)) = (self.admin_id, &self.old_admin) else {
            return None;
        };
        Some(vexil_core::old_admin::OldAdmin {
            id,
            account: old.account.as_deref(),
            before_vexil: old.before_vexil,
        })
    }

    /// The row as the hash chain and its proofs see it.
    pub fn chain_row(&self) -> vexil_core::audit_chain::ChainRow {
        vexil_core::audit_chain::ChainRow {
            id: self.id,
            created_at: self.created_at,
            admin_id: self.admin_id,
            action: self.action.clone(),
            target_type: self.target_type.clone(),
            target_id: self.target_id.clone(),
            payload: self.payload.clone(),
            mac: self.mac.clone(),
        }
    }
}

/// The audited flips of one flag in one env: how many, and the newest one's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlipCount {
    pub flag: String,
    pub env: String,
    pub count: u64,
    pub last_at: DateTime<Utc>,
}

/// Which rows to read. Every filter is optional; `before` and `after` page by row id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// The flag key (`target_id` of flag rows).
    pub flag: Option<String>,
    /// Flag rows whose key contains this text, in any case (`%`, `_` and `\` match
    /// themselves).
    pub flag_contains: Option<String>,
    /// Rows about this account (`target_type` user): its changes, its sign-ins.
    pub account: Option<String>,
    /// The account name.
    pub actor: Option<String>,
    /// Rows written by or about an account whose name contains this text, in any case
    /// (`%`, `_` and `\` match themselves): its changes, its sign-ins, and the failed
    /// sign-ins under its name (which no account wrote).
    pub party_contains: Option<String>,
    /// Rows whose payload names this env (flips, promotions).
    pub env: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only rows older than this id: the cursor of the next (older) page.
    pub before: Option<i64>,
    /// Only rows newer than this id: the cursor of the previous (newer) page, which is
    /// the `limit` rows just after it (still returned newest first).
    pub after: Option<i64>,
    pub limit: u32,
}

/// A row as selected: timestamps and JSON cast to text, so that one Rust type reads
/// both databases.
type RawRow = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    String,
    String,
    String,
    String,
    Option<Vec<u8>>,
    Option<i64>,
    Option<String>,
    i32,
);

impl NewAudit {
    /// The row's proof of authorship (`mac`), `created_at` as the database keeps it.
    pub(crate) fn proof(
        &self,
        prover: Option<&dyn AuditProver>,
        created_at: DateTime<Utc>,
        id: Option<i64>,
    ) -> Option<Vec<u8>> {
        prover.map(|prover| {
            prover.prove(
                &vexil_core::audit_chain::content(
                    created_at,
                    self.admin_id,
                    self.action,
                    self.target_type,
                    &self.target_id,
                    &self.payload,
                ),
                id,
            )
        })
    }
}

impl WriteTx {
    /// Appends `entry` and returns its id.
    pub async fn append_audit(&mut self, entry: &NewAudit) -> Result<i64, StoreError> {
        let prover = self.prover.clone();
        // SQLite's one writer knows the id before the insert (this transaction holds
        // the write lock): the row's proof is bound to it. `AUTOINCREMENT` never
        // reuses an id, so neither does this (the larger of the sequence and the
        // largest id, plus one).
        let next_id: Option<i64> = match (&mut self.tx, &prover) {
            #[cfg(feature = "sqlite")]
            (crate::db::Tx::Sqlite(tx), Some(_)) => Some(
                sqlx::query_scalar(
                    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence \
                     WHERE name = 'console_audit_log'), 0), \
                     COALESCE((SELECT MAX(id) FROM console_audit_log), 0)) + 1",
                )
                .fetch_one(&mut **tx)
                .await?,
            ),
            _ => None,
        };
        // Without a known id the database draws it (PostgreSQL's identity; its proofs
        // carry a random nonce instead). `COALESCE` with the identity's own default
        // would be refused by `GENERATED ALWAYS`, hence two texts.
        let sql = if next_id.is_some() {
            "INSERT INTO console_audit_log \
             (id, created_at, admin_id, action, target_type, target_id, payload, mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
        } else {
            "INSERT INTO console_audit_log \
             (created_at, admin_id, action, target_type, target_id, payload, mac) \
             SELECT $2, $3, $4, $5, $6, $7, $8 WHERE CAST($1 AS BIGINT) IS NULL RETURNING id"
        };
        let id = on_tx!(self, |tx, DB| {
            let created_at = <DB as Dialect>::stored(entry.created_at);
            sqlx::query_scalar(sql)
                .bind(next_id)
                .bind(<DB as Dialect>::timestamp(created_at))
                .bind(entry.admin_id)
                .bind(entry.action)
                .bind(entry.target_type)
                .bind(&entry.target_id)
                .bind(sqlx::types::Json(&entry.payload))
                .bind(entry.proof(prover.as_deref(), created_at, next_id))
                .fetch_one(&mut **tx)
                .await?
        });
        self.audited.push(entry.action);
        Ok(id)
    }
}

impl Db {
    /// How many `console.flag.flip` rows each (flag, env) has, whoever wrote them
    /// (vexil, or a database trigger auditing direct SQL): the deprecation table's
    /// "at least one console.flag.flip entry per env"; and the newest one's time (stale
    /// flags: a direct `UPDATE` need not touch `updated_at`, but it is audited).
    /// A direct SQL update whose `from` equals its `to` changed nothing and is no
    /// evidence: such rows are what the triggers wrote before a write without change
    /// had its own action (`console.flag.touched`, migration 0008). A row inserted by
    /// SQL counts (it made the DB row live), and so does each of vexil's own flips.
    pub async fn flip_counts(&self) -> Result<Vec<FlipCount>, StoreError> {
        let field = |name: &str| {
            if self.is_sqlite() {
                format!("json_extract(payload, '$.{name}')")
            } else {
                format!("(payload ->> '{name}')")
            }
        };
        let (env, from, to, via, source) = (
            field("env"),
            field("from"),
            field("to"),
            field("via"),
            field("from_source"),
        );
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT target_id, CAST({env} AS TEXT), COUNT(*), CAST(MAX(created_at) AS TEXT) \
             FROM console_audit_log \
             WHERE action = 'console.flag.flip' AND target_type = 'feature_flag' \
             AND {env} IS NOT NULL \
             AND NOT COALESCE({via} = 'sql' AND {from} IS NOT NULL AND {from} = {to} \
                              AND {source} IS NULL, FALSE) \
             GROUP BY target_id, {env}"
        ));
        let rows: Vec<(String, String, i64, String)> =
            on_pool!(self, |pool, DB| sqlx::query_as(sql).fetch_all(pool).await?);
        rows.into_iter()
            .map(|(flag, env, n, last)| {
                Ok(FlipCount {
                    flag,
                    env,
                    count: n.unsigned_abs(),
                    last_at: parse_timestamp(&last)?,
                })
            })
            .collect()
    }

    /// Rows matching `filter`, newest (highest id, the order rows were appended) first.
    ///
    /// Only the filters that are set become SQL conditions, so each query can walk
    /// the index that fits it (`(target_id, id)`, `(action, id)`, `(admin_id, id)`)
    /// instead of scanning the log: a rare flag's page costs the same in a log of ten
    /// million rows as in one of ten. With `after`, the rows are read oldest first
    /// from the cursor (the page just newer than it) and turned round here.
    pub async fn audit_page(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut placeholder = 0;
        let mut next = || {
            placeholder += 1;
            format!("${placeholder}")
        };
        if filter.action.is_some() {
            conditions.push(format!("a.action = {}", next()));
        }
        if filter.flag.is_some() {
            conditions.push(format!(
                "a.target_type = 'feature_flag' AND a.target_id = {}",
                next()
            ));
        }
        if filter.flag_contains.is_some() {
            conditions.push(format!(
                "a.target_type = 'feature_flag' AND {}",
                contains("a.target_id", &next())
            ));
        }
        if filter.account.is_some() {
            conditions.push(format!(
                "a.target_type = 'user' AND a.target_id = {}",
                next()
            ));
        }
        if filter.actor.is_some() {
            conditions.push(format!("u.name = {}", next()));
        }
        if filter.party_contains.is_some() {
            let party = next();
            conditions.push(format!(
                "({} OR (a.target_type = 'user' AND {}))",
                contains("u.name", &party),
                contains("a.target_id", &party)
            ));
        }
        if filter.env.is_some() {
            let env = if self.is_sqlite() {
                "json_extract(a.payload, '$.env')"
            } else {
                "a.payload ->> 'env'"
            };
            conditions.push(format!("{env} = {}", next()));
        }
        if filter.since.is_some() {
            conditions.push(format!("a.created_at >= {}", next()));
        }
        if filter.until.is_some() {
            conditions.push(format!("a.created_at < {}", next()));
        }
        if filter.before.is_some() {
            conditions.push(format!("a.id < {}", next()));
        }
        if filter.after.is_some() {
            conditions.push(format!("a.id > {}", next()));
        }
        let limit = next();
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let order = if filter.after.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        // Every piece of this text is one of the fixed fragments above; the values
        // travel as bound parameters.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT a.id, CAST(a.created_at AS TEXT), a.admin_id, u.name, a.action, \
             a.target_type, a.target_id, CAST(a.payload AS TEXT), a.mac, o.admin_id, m.name, \
             CASE WHEN a.id <= (SELECT MAX(last_old_audit_id) FROM console_adoption) \
             THEN 1 ELSE 0 END \
             FROM console_audit_log a LEFT JOIN users u ON u.id = a.admin_id \
             LEFT JOIN console_old_admins o ON o.admin_id = a.admin_id \
             LEFT JOIN users m ON m.id = o.account_id \
             {where_clause} ORDER BY a.id {order} LIMIT {limit}"
        ));
        let flag_contains = filter.flag_contains.as_deref().map(like_pattern);
        let party_contains = filter.party_contains.as_deref().map(like_pattern);
        let rows: Vec<RawRow> = on_pool!(self, |pool, DB| {
            let mut query = sqlx::query_as(sql);
            if let Some(action) = &filter.action {
                query = query.bind(action);
            }
            if let Some(flag) = &filter.flag {
                query = query.bind(flag);
            }
            if let Some(pattern) = &flag_contains {
                query = query.bind(pattern);
            }
            if let Some(account) = &filter.account {
                query = query.bind(account);
            }
            if let Some(actor) = &filter.actor {
                query = query.bind(actor);
            }
            if let Some(pattern) = &party_contains {
                query = query.bind(pattern);
            }
            if let Some(env) = &filter.env {
                query = query.bind(env);
            }
            if let Some(since) = filter.since {
                query = query.bind(<DB as Dialect>::timestamp(since));
            }
            if let Some(until) = filter.until {
                query = query.bind(<DB as Dialect>::timestamp(until));
            }
            if let Some(before) = filter.before {
                query = query.bind(before);
            }
            if let Some(after) = filter.after {
                query = query.bind(after);
            }
            query.bind(i64::from(filter.limit)).fetch_all(pool).await?
        });
        let mut rows = rows
            .into_iter()
            .map(audit_row)
            .collect::<Result<Vec<_>, _>>()?;
        if filter.after.is_some() {
            rows.reverse();
        }
        Ok(rows)
    }
}

/// `column` contains the text bound to `placeholder`, in any case. `LOWER` on both
/// sides rather than PostgreSQL's `ILIKE`, so one text serves both databases; the
/// escape character is named because SQLite has none by default.
fn contains(column: &str, placeholder: &str) -> String {
    format!("LOWER({column}) LIKE LOWER({placeholder}) ESCAPE '\\'")
}

/// The `LIKE` pattern of "contains `text`": its own `%`, `_` and `\` escaped, so that
/// what an operator types matches only itself.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn audit_row(raw: RawRow) -> Result<AuditRow, StoreError> {
    let (
        id,
        created_at,
        admin_id,
        admin_name,
        action,
        target_type,
        target_id,
        payload,
        mac,
        old_admin,
        old_admin_account,
        before_vexil,
    ) = raw;
    Ok(AuditRow {
        id,
        created_at: parse_timestamp(&created_at)?,
        admin_id,
        admin_name,
        action,
        target_type,
        target_id,
        payload: serde_json::from_str(&payload).map_err(|_| StoreError::Corrupt {
            what: format!("the payload of audit row {id}"),
        })?,
        mac,
        old_admin: old_admin.map(|_| OldAdminOf {
            account: old_admin_account,
            before_vexil: before_vexil == 1,
        }),
    })
}
