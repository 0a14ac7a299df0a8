//! `console_audit_seals`: sealing the audit log into its hash chain, and walking the
//! chain to verify it (`vexil_core::audit_chain` holds the rules; this file the SQL).
//!
//! Sealing appends links in id order after the newest one. On PostgreSQL, rows can
//! commit out of id order (two transactions draw ids 7 and 8; 8 commits first), so
//! the sealer must never seal 8 while 7 may still appear: every statement inserting
//! into the audit log first takes a shared advisory lock for its transaction (the
//! trigger `console_audit_log_sealing_order`, before the row's id is drawn), and the
//! sealer takes the same lock exclusively, which waits until every such transaction
//! has ended, just long enough to read the largest id (its horizon); it then seals
//! up to the horizon without the lock. Waiting is bounded (`lock_timeout`): a
//! transaction left open by hand delays sealing, never flips. On SQLite the sealer
//! reads and hashes outside the write lock and takes it only to insert the links. On SQLite, writers are serialised and ids are drawn
//! in commit order, so the write transaction alone suffices. Either way, `prev_id`
//! is unique: two sealers racing (several servers) cannot fork the chain; the loser
//! fails its insert and finds the links already there next time.

#[cfg(feature = "sqlite")]
use std::collections::VecDeque;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
#[cfg(feature = "sqlite")]
use serde_json::Value;
use vexil_core::audit_chain::{self, Anchor, Hash};
use vexil_core::audit_chain::{ChainRow, Fault, Proof, Seal, Verified, Verifier};

use crate::db::{Db, Pool, on_pool, parse_timestamp};
use crate::error::StoreError;

/// The advisory lock shared by audit writers and taken by the sealer (the migration's
/// trigger names the same number).
const SEALING_LOCK: i64 = 7_308_604_892_375_413_601;

/// How many rows one sealing transaction takes at most.
const SEAL_BATCH: i64 = 5_000;

/// What one call to `Db::seal_audit` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SealReport {
    /// Rows sealed by this call.
    pub sealed: u64,
    /// The newest link after it.
    pub head: Option<Anchor>,
}

/// A row as selected for the chain: timestamps and JSON cast to text.
type RawChainRow = (
    i64,
    String,
    Option<i64>,
    String,
    String,
    String,
    String,
    Option<Vec<u8>>,
);

/// One id of the walk: the row's columns (when the row exists), then the seal's.
type RawWalk = (
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

const WALK: &str = "SELECT COALESCE(a.id, s.audit_id), a.id, CAST(a.created_at AS TEXT), a.admin_id, \
     a.action, a.target_type, a.target_id, CAST(a.payload AS TEXT), a.mac, \
     s.prev_id, s.row_hash, s.hash \
     FROM console_audit_log a FULL JOIN console_audit_seals s ON s.audit_id = a.id \
     ORDER BY 1";

const HEAD: &str = "SELECT audit_id, hash FROM console_audit_seals ORDER BY audit_id DESC LIMIT 1";

fn chain_row(raw: RawChainRow) -> Result<ChainRow, StoreError> {
    let (id, created_at, admin_id, action, target_type, target_id, payload, mac) = raw;
    Ok(ChainRow {
        id,
        created_at: parse_timestamp(&created_at)?,
        admin_id,
        action,
        target_type,
        target_id,
        payload: serde_json::from_str(&payload).map_err(|_| StoreError::Corrupt {
            what: format!("the payload of audit row {id}"),
        })?,
        mac,
    })
}

fn hash(bytes: Vec<u8>, what: &str, id: i64) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: format!("the {what} of the seal of audit row {id}"),
    })
}

fn anchor((id, bytes): (i64, Vec<u8>)) -> Result<Anchor, StoreError> {
    Ok(Anchor {
        id,
        hash: hash(bytes, "hash", id)?,
    })
}

impl Db {
    /// Seals every committed audit row after the newest link, in id order, in
    /// batches. Safe to call from any number of processes at once.
    pub async fn seal_audit(&self) -> Result<SealReport, StoreError> {
        let mut report = SealReport::default();
        loop {
            let batch = match self.seal_batch().await {
                Ok(batch) => batch,
                // lock_not_available (lock_timeout), unique_violation (another sealer
                // linked the same rows first), SQLITE_BUSY: come back later.
                Err(StoreError::Query(sqlx::Error::Database(e)))
                    if matches!(
                        e.code().as_deref(),
                        Some("55P03" | "23505" | "5" | "2067" | "1555")
                    ) =>
                {
                    report.head = self.audit_head().await?;
                    return Ok(report);
                }
                Err(e) => return Err(e),
            };
            report.sealed += batch.0;
            report.head = batch.1;
            if batch.0 < SEAL_BATCH.unsigned_abs() {
                return Ok(report);
            }
        }
    }

    /// Seals up to `SEAL_BATCH` rows in one transaction.
    async fn seal_batch(&self) -> Result<(u64, Option<Anchor>), StoreError> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                // Read and hash outside the write lock (a read sees a consistent
                // snapshot, and SQLite's ids are drawn in commit order), so that flips
                // wait only for the insert; then, holding the lock, make sure no other
                // sealer moved the head meanwhile.
                let (head, seals) = {
                    let mut read = pool.begin().await?;
                    let head: Option<(i64, Vec<u8>)> =
                        sqlx::query_as(HEAD).fetch_optional(&mut *read).await?;
                    let head = head.map(anchor).transpose()?;
                    let rows =
                        sqlite_rows_after(&mut read, head.map_or(0, |h| h.id), SEAL_BATCH).await?;
                    read.commit().await?;
                    (head, audit_chain::links(head, &rows))
                };
                if seals.is_empty() {
                    return Ok(sealed(head, &seals));
                }
                let mut write = self.begin_write().await?;
                let crate::db::Tx::Sqlite(tx) = &mut write.tx else {
                    unreachable!("a SQLite database begins SQLite transactions")
                };
                let now: Option<(i64, Vec<u8>)> =
                    sqlx::query_as(HEAD).fetch_optional(&mut **tx).await?;
                if now.map(anchor).transpose()? != head {
                    // Another sealer got there first: its links stand; try again later.
                    return Ok(sealed(self.audit_head().await?, &[]));
                }
                {
                    // One statement for the batch: a statement per link costs a hop to
                    // the connection's thread each, measured at a tenth of eight
                    // writers' flip rate while the write lock is held.
                    let batch: Vec<(i64, i64, String, String)> = seals
                        .iter()
                        .map(|s| {
                            (
                                s.audit_id,
                                s.prev_id,
                                audit_chain::hex(&s.row_hash),
                                audit_chain::hex(&s.hash),
                            )
                        })
                        .collect();
                    sqlx::query(
                        "INSERT INTO console_audit_seals (audit_id, prev_id, row_hash, hash) \
                         SELECT value ->> 0, value ->> 1, unhex(value ->> 2), unhex(value ->> 3) \
                         FROM json_each($1) ORDER BY key",
                    )
                    .bind(sqlx::types::Json(&batch))
                    .execute(&mut **tx)
                    .await?;
                }
                write.commit().await?;
                Ok(sealed(head, &seals))
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                // The horizon: holding the lock exclusively, no transaction that drew
                // an audit id is in flight, so every id up to the largest visible is
                // final (committed or never). Held for that one read only; ids drawn
                // after it are larger.
                let horizon: i64 = {
                    let mut lock = pool.begin().await?;
                    sqlx::query("SET LOCAL lock_timeout = '250ms'")
                        .execute(&mut *lock)
                        .await?;
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(SEALING_LOCK)
                        .execute(&mut *lock)
                        .await?;
                    let horizon =
                        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM console_audit_log")
                            .fetch_one(&mut *lock)
                            .await?;
                    lock.commit().await?;
                    horizon
                };
                let mut tx = pool.begin().await?;
                let head: Option<(i64, Vec<u8>)> =
                    sqlx::query_as(HEAD).fetch_optional(&mut *tx).await?;
                let head = head.map(anchor).transpose()?;
                let raw: Vec<RawChainRow> = sqlx::query_as(
                    "SELECT id, CAST(created_at AS TEXT), admin_id, action, target_type, \
                     target_id, CAST(payload AS TEXT), mac FROM console_audit_log \
                     WHERE id > $1 AND id <= $3 ORDER BY id LIMIT $2",
                )
                .bind(head.map_or(0, |h| h.id))
                .bind(SEAL_BATCH)
                .bind(horizon)
                .fetch_all(&mut *tx)
                .await?;
                let rows = raw
                    .into_iter()
                    .map(chain_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let seals = audit_chain::links(head, &rows);
                if !seals.is_empty() {
                    sqlx::query(
                        "INSERT INTO console_audit_seals (audit_id, prev_id, row_hash, hash) \
                         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BYTEA[], $4::BYTEA[])",
                    )
                    .bind(seals.iter().map(|s| s.audit_id).collect::<Vec<_>>())
                    .bind(seals.iter().map(|s| s.prev_id).collect::<Vec<_>>())
                    .bind(seals.iter().map(|s| s.row_hash.to_vec()).collect::<Vec<_>>())
                    .bind(seals.iter().map(|s| s.hash.to_vec()).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(sealed(head, &seals))
            }
        }
    }

    /// The newest link: `ID:HASH`, to keep outside the database.
    pub async fn audit_head(&self) -> Result<Option<Anchor>, StoreError> {
        let head: Option<(i64, Vec<u8>)> = on_pool!(self, |pool, DB| sqlx::query_as(HEAD)
            .fetch_optional(pool)
            .await?);
        head.map(anchor).transpose()
    }

    /// How many rows are not sealed yet, and the oldest one's time.
    pub async fn audit_unsealed(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        let (count, oldest): (i64, Option<String>) = on_pool!(self, |pool, DB| {
            sqlx::query_as(
                "SELECT COUNT(*), CAST(MIN(created_at) AS TEXT) FROM console_audit_log \
                 WHERE id > COALESCE((SELECT MAX(audit_id) FROM console_audit_seals), 0)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok((
            count.unsigned_abs(),
            oldest.as_deref().map(parse_timestamp).transpose()?,
        ))
    }

    /// The last row written before proofs of authorship existed (migration 7): rows up
    /// to it carry none, and are not asked for one.
    pub async fn audit_proofs_since(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool, DB| {
            sqlx::query_scalar("SELECT COALESCE(MAX(audit_id), 0) FROM console_audit_proofs_since")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Walks the whole log and its chain in id order, in one read (one snapshot), and
    /// names the first fault. `proof` judges each row's claim of authorship.
    pub async fn verify_audit(
        &self,
        anchor: Option<Anchor>,
        proof: &(dyn Fn(&ChainRow) -> Proof + Sync),
    ) -> Result<Result<Verified, Fault>, StoreError> {
        let mut verifier = Verifier::new(anchor);
        let mut outcome = Ok(());
        self.walk(&mut |id, row, seal| {
            let judged = row.as_ref().map_or(Proof::NotChecked, proof);
            match verifier.push(row.as_ref(), seal.as_ref(), judged) {
                Ok(()) => ControlFlow::Continue(()),
                Err(fault) => {
                    outcome = Err((fault, row, id));
                    ControlFlow::Break(())
                }
            }
        })
        .await?;
        match outcome {
            Ok(()) => Ok(verifier.finish()),
            Err((Fault::Changed { id }, Some(row), _)) => {
                // Does the row hold what was sealed for another one? Then rows were
                // moved (swapped ids), not edited.
                let row_hash = row.row_hash();
                let other: Option<i64> = on_pool!(self, |pool, DB| {
                    sqlx::query_scalar(
                        "SELECT audit_id FROM console_audit_seals WHERE row_hash = $1 AND audit_id <> $2 LIMIT 1",
                    )
                    .bind(&row_hash[..])
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                });
                Ok(Err(match other {
                    Some(sealed_as) => Fault::Reordered { id, sealed_as },
                    None => Fault::Changed { id },
                }))
            }
            Err((fault, _, _)) => Ok(Err(fault)),
        }
    }

    /// Every row created in [since, until) with its seal and the hash of the link
    /// before it, in id order, for an export; rows not sealed yet come with `None`.
    pub async fn audit_rows_sealed(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        f: &mut (dyn FnMut(ChainRow, Option<Seal>, Option<Hash>) -> std::io::Result<()> + Send),
    ) -> Result<(), StoreError> {
        let mut prev_hash = audit_chain::GENESIS;
        let mut failed = None;
        self.walk(&mut |_, row, seal| {
            let before = prev_hash;
            if let Some(seal) = &seal {
                prev_hash = seal.hash;
            }
            let Some(row) = row else {
                return ControlFlow::Continue(());
            };
            if since.is_some_and(|t| row.created_at < t)
                || until.is_some_and(|t| row.created_at >= t)
            {
                return ControlFlow::Continue(());
            }
            match f(row, seal, Some(before)) {
                Ok(()) => ControlFlow::Continue(()),
                Err(source) => {
                    failed = Some(source);
                    ControlFlow::Break(())
                }
            }
        })
        .await?;
        if let Some(source) = failed {
            return Err(StoreError::Export { source });
        }
        Ok(())
    }
}

/// How many rows (or seals) one read of SQLite's walk takes.
#[cfg(feature = "sqlite")]
const WALK_CHUNK: i64 = 10_000;

/// A row of SQLite's chunked walk, as `json_array` writes it.
#[cfg(feature = "sqlite")]
type JsonRow = (
    i64,
    String,
    Option<i64>,
    String,
    String,
    String,
    Value,
    Option<String>,
);

impl Db {
    /// Every id of the log and its seals, in id order, in one snapshot: `f` gets the
    /// row and the seal each id has, and may stop the walk. PostgreSQL streams one
    /// FULL JOIN. SQLite reads both tables in chunks inside one read transaction, each
    /// chunk one JSON value, merged here: row by row, each row was a hop between
    /// sqlx's SQLite thread and this task, most of the walk's time.
    async fn walk(
        &self,
        f: &mut (dyn FnMut(i64, Option<ChainRow>, Option<Seal>) -> ControlFlow<()> + Send),
    ) -> Result<(), StoreError> {
        match &self.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                let mut rows = sqlx::query_as::<_, RawWalk>(WALK).fetch(pool);
                while let Some(raw) = rows.try_next().await? {
                    let (id, row, seal) = walk_item(raw)?;
                    if f(id, row, seal).is_break() {
                        break;
                    }
                }
                Ok(())
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let mut rows: VecDeque<ChainRow> = VecDeque::new();
                let mut seals: VecDeque<Seal> = VecDeque::new();
                let (mut rows_after, mut seals_after) = (Some(0i64), Some(0i64));
                loop {
                    if rows.is_empty()
                        && let Some(after) = rows_after
                    {
                        let chunk = sqlite_rows_after(&mut tx, after, WALK_CHUNK).await?;
                        rows_after = (chunk.len() as i64 == WALK_CHUNK)
                            .then(|| chunk.last().map_or(after, |r| r.id));
                        rows.extend(chunk);
                    }
                    if seals.is_empty()
                        && let Some(after) = seals_after
                    {
                        let chunk: String = sqlx::query_scalar(
                            "SELECT COALESCE(json_group_array(json_array(audit_id, prev_id, \
                             hex(row_hash), hex(hash))), '[]') \
                             FROM (SELECT * FROM console_audit_seals WHERE audit_id > $1 ORDER BY audit_id LIMIT $2)",
                        )
                        .bind(after)
                        .bind(WALK_CHUNK)
                        .fetch_one(&mut *tx)
                        .await?;
                        let mut chunk: Vec<(i64, i64, String, String)> =
                            serde_json::from_str(&chunk).map_err(|e| StoreError::Corrupt {
                                what: format!("the audit seals after row {after}: {e}"),
                            })?;
                        chunk.sort_unstable_by_key(|s| s.0);
                        seals_after = (chunk.len() as i64 == WALK_CHUNK)
                            .then(|| chunk.last().map_or(after, |s| s.0));
                        for (audit_id, prev_id, row_hash, link) in chunk {
                            seals.push_back(Seal {
                                audit_id,
                                prev_id,
                                row_hash: hash(unhex(&row_hash, audit_id)?, "row hash", audit_id)?,
                                hash: hash(unhex(&link, audit_id)?, "hash", audit_id)?,
                            });
                        }
                    }
                    let id = match (rows.front(), seals.front()) {
                        (None, None) => break,
                        (Some(r), None) => r.id,
                        (None, Some(s)) => s.audit_id,
                        (Some(r), Some(s)) => r.id.min(s.audit_id),
                    };
                    let row = rows
                        .front()
                        .is_some_and(|r| r.id == id)
                        .then(|| rows.pop_front())
                        .flatten();
                    let seal = seals
                        .front()
                        .is_some_and(|s| s.audit_id == id)
                        .then(|| seals.pop_front())
                        .flatten();
                    if f(id, row, seal).is_break() {
                        break;
                    }
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }
}

/// Up to `limit` rows after `after`, in id order, read as one JSON value (see
/// `Db::walk`).
#[cfg(feature = "sqlite")]
async fn sqlite_rows_after(
    conn: &mut sqlx::SqliteConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<ChainRow>, StoreError> {
    let chunk: String = sqlx::query_scalar(
        "SELECT COALESCE(json_group_array(json_array(id, created_at, admin_id, \
         action, target_type, target_id, json(payload), \
         CASE WHEN mac IS NULL THEN NULL ELSE hex(mac) END)), '[]') \
         FROM (SELECT * FROM console_audit_log WHERE id > $1 ORDER BY id LIMIT $2)",
    )
    .bind(after)
    .bind(limit)
    .fetch_one(&mut *conn)
    .await?;
    let mut chunk: Vec<JsonRow> =
        serde_json::from_str(&chunk).map_err(|e| StoreError::Corrupt {
            what: format!("the audit log after row {after}: {e}"),
        })?;
    chunk.sort_unstable_by_key(|r| r.0);
    chunk
        .into_iter()
        .map(
            |(id, created_at, admin_id, action, target_type, target_id, payload, mac)| {
                Ok(ChainRow {
                    id,
                    created_at: parse_timestamp(&created_at)?,
                    admin_id,
                    action,
                    target_type,
                    target_id,
                    payload,
                    mac: mac.map(|m| unhex(&m, id)).transpose()?,
                })
            },
        )
        .collect()
}

/// Hexadecimal text as SQLite's `hex()` writes it, back to bytes.
#[cfg(feature = "sqlite")]
fn unhex(text: &str, id: i64) -> Result<Vec<u8>, StoreError> {
    let bad = || StoreError::Corrupt {
        what: format!("a hash or proof of audit row {id}"),
    };
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}

fn sealed(head: Option<Anchor>, seals: &[Seal]) -> (u64, Option<Anchor>) {
    let last = seals.last().map(|s| Anchor {
        id: s.audit_id,
        hash: s.hash,
    });
    (seals.len() as u64, last.or(head))
}

fn walk_item(raw: RawWalk) -> Result<(i64, Option<ChainRow>, Option<Seal>), StoreError> {
    let (
        id,
        row_id,
        created_at,
        admin_id,
        action,
        target_type,
        target_id,
        payload,
        mac,
        prev_id,
        row_hash,
        link,
    ) = raw;
    let row = match (row_id, created_at, action, target_type, target_id, payload) {
        (
            Some(row_id),
            Some(created_at),
            Some(action),
            Some(target_type),
            Some(target_id),
            Some(payload),
        ) => Some(chain_row((
            row_id,
            created_at,
            admin_id,
            action,
            target_type,
            target_id,
            payload,
            mac,
        ))?),
        _ => None,
    };
    let seal = match (prev_id, row_hash, link) {
        (Some(prev_id), Some(row_hash), Some(link)) => Some(Seal {
            audit_id: id,
            prev_id,
            row_hash: hash(row_hash, "row hash", id)?,
            hash: hash(link, "hash", id)?,
        }),
        _ => None,
    };
    Ok((id, row, seal))
}
