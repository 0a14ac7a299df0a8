//! The audit log's integrity (docs/audit-integrity.md): sealing it into its hash
//! chain, verifying the chain (in the database or in an export file), exporting it
//! for retention, and the proofs of authorship vexil writes on its own rows.
//!
//! A proof (`AuditMac`) is a random nonce and an HMAC-SHA256, under a key derived
//! from the instance's secret key, over the row's canonical content. The database
//! never holds the key, so a row inserted by SQL cannot carry a valid proof. Nor can
//! a copy of a genuine row: on SQLite the nonce is the row's own id (the store knows
//! it before the insert), on PostgreSQL it is random and the `mac` column unique.
//!
//! Also here: `SessionMac` (the seal on console sessions), `unproven` (rows the pages
//! show as direct SQL), and `export_audit` (JSON Lines or CSV, each row with its link)
//! with `verify_audit_file` to check an export later.

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vexil_core::audit_chain::{
    self, Anchor, ChainRow, Fault, Proof, Seal, Verified, Verifier, parse_hash,
};
use vexil_store::{AuditProver, SealReport};

use crate::app::App;
use crate::error::AppError;
use crate::secret_key::SecretKey;

/// The bytes of a proof's nonce, stored before its tag.
const NONCE_LEN: usize = 16;

/// A nonce that starts with these 8 bytes ends with the row's id (big-endian): the
/// proof is valid for that row only.
const ID_BOUND: &[u8; 8] = b"vexil:id";

/// Signs and checks audit rows with a key derived from the secret key.
#[derive(Clone)]
pub(crate) struct AuditMac([u8; 32]);

impl std::fmt::Debug for AuditMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditMac(***)")
    }
}

impl AuditMac {
    pub(crate) fn new(secret_key: &SecretKey) -> AuditMac {
        AuditMac(secret_key.derive("vexil.audit-proof.v1"))
    }

    fn tag(&self, nonce: &[u8], content: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(nonce);
        mac.update(content);
        mac
    }

    /// Whether `proof` is this key's over `content` (in constant time), and, when it
    /// is bound to an id, bound to this row's.
    pub(crate) fn check(&self, content: &[u8], proof: &[u8], id: i64) -> bool {
        if proof.len() <= NONCE_LEN {
            return false;
        }
        let (nonce, tag) = proof.split_at(NONCE_LEN);
        if let Some(bound) = nonce.strip_prefix(ID_BOUND)
            && bound != id.to_be_bytes()
        {
            return false;
        }
        self.tag(nonce, content).verify_slice(tag).is_ok()
    }
}

impl AuditProver for AuditMac {
    fn prove(&self, content: &[u8], id: Option<i64>) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        if let Some(id) = id {
            // Bound to the row's id: a copy under another id fails `check`.
            nonce[..ID_BOUND.len()].copy_from_slice(ID_BOUND);
            nonce[ID_BOUND.len()..].copy_from_slice(&id.to_be_bytes());
        } else if getrandom::fill(&mut nonce).is_err() {
            // A failing system random source is not recoverable here; the nonce only
            // keeps two identical rows' proofs apart (the column is unique), so the
            // time is a fallback that still differs between calls.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            nonce.copy_from_slice(&now.to_be_bytes());
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&self.tag(&nonce, content).finalize().into_bytes());
        out
    }
}

/// Seals console session records so that the database alone cannot mint one: an
/// HMAC-SHA256 under a key derived from the secret key over the session's id hash,
/// data and expiry (whole seconds, which every backend keeps).
#[derive(Clone)]
pub struct SessionMac([u8; 32]);

impl std::fmt::Debug for SessionMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionMac(***)")
    }
}

impl SessionMac {
    fn mac(
        &self,
        id_hash: &[u8],
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(&(id_hash.len() as u64).to_be_bytes());
        mac.update(id_hash);
        mac.update(&(data.len() as u64).to_be_bytes());
        mac.update(data.as_bytes());
        mac.update(&expires_at.timestamp().to_be_bytes());
        mac
    }

    /// The MAC to store with the session.
    pub fn seal(&self, id_hash: &[u8], data: &str, expires_at: DateTime<Utc>) -> Vec<u8> {
        self.mac(id_hash, data, expires_at)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `mac` is this key's over the session (in constant time).
    pub fn check(&self, id_hash: &[u8], data: &str, expires_at: DateTime<Utc>, mac: &[u8]) -> bool {
        self.mac(id_hash, data, expires_at)
            .verify_slice(mac)
            .is_ok()
    }
}

/// Which rows are asked for a proof of authorship.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofScope {
    /// Rows up to this id were written before proofs existed.
    since: i64,
    /// On an adopted database, vexil's first account id: a row under a lower
    /// `admin_id` is the old console's. 0 elsewhere.
    old_admins_below: i64,
}

/// What a verification found, and whether authorship was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheck {
    pub outcome: Result<Verified, Fault>,
    /// `false` when no secret key was configured: the chain was checked, who wrote
    /// each row was not.
    pub attribution_checked: bool,
}

/// The formats of `vexil audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, the payload as JSON.
    Jsonl,
    /// A header and one row per line, the payload as JSON text.
    Csv,
}

/// One exported row with its link: everything needed to verify it without the
/// database. `prev_hash` is the link before it, so an export that starts mid-chain
/// verifies on its own (and an anchor ties it to the whole chain).
#[derive(Debug, Serialize, Deserialize)]
struct Record<P> {
    id: i64,
    created_at: String,
    admin_id: Option<i64>,
    action: String,
    target_type: String,
    target_id: String,
    payload: P,
    mac: Option<String>,
    prev_id: Option<i64>,
    prev_hash: Option<String>,
    row_hash: Option<String>,
    hash: Option<String>,
}

impl<P> Record<P> {
    fn map_payload<Q>(self, f: impl FnOnce(P) -> Q) -> Record<Q> {
        Record {
            id: self.id,
            created_at: self.created_at,
            admin_id: self.admin_id,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            payload: f(self.payload),
            mac: self.mac,
            prev_id: self.prev_id,
            prev_hash: self.prev_hash,
            row_hash: self.row_hash,
            hash: self.hash,
        }
    }
}

/// Why an export file cannot be read: the line and what is wrong on it.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct BadExport {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl App {
    /// The key that seals console sessions; `None` without a secret key (sessions
    /// are then stored unsealed: docs/audit-integrity.md).
    pub fn session_mac(&self) -> Option<SessionMac> {
        self.secret_key
            .as_ref()
            .map(|key| SessionMac(key.derive("vexil.session-mac.v1")))
    }

    /// Seals every committed audit row into the chain. `vexil serve` calls it every
    /// second and each CLI command before it exits; any number of processes may.
    pub async fn seal_audit(&self) -> Result<SealReport, AppError> {
        Ok(self.db.seal_audit().await?)
    }

    /// Seals, then names the newest link: `ID:HASH`, to keep outside the database.
    pub async fn audit_head(&self) -> Result<Option<Anchor>, AppError> {
        let report = self.seal_audit().await?;
        Ok(report.head)
    }

    /// What decides which rows are asked for a proof, read once per page or walk.
    pub(crate) async fn proof_scope(&self) -> Result<ProofScope, AppError> {
        Ok(ProofScope {
            since: self.db.audit_proofs_since().await?,
            old_admins_below: self
                .db
                .adoption()
                .await?
                .map_or(0, |adoption| adoption.accounts_from),
        })
    }

    /// Whether `row` proves it was written by vexil; `NotChecked` without a secret
    /// key, for rows written before proofs existed, and for rows under an old console
    /// admin's id that make no claim of vexil's: the old console writes those while
    /// it runs beside vexil (docs/adopt.md), in the runbook's payload, which names no
    /// door (`via`). A row under an old id that names one claims to be vexil's own
    /// and must prove it like any other: else anyone able to insert into the log could
    /// put a mapped account's name on a console flip.
    pub(crate) fn proof(&self, row: &ChainRow, scope: ProofScope) -> Proof {
        match (&self.audit_mac, &row.mac) {
            (None, _) => Proof::NotChecked,
            _ if row.id <= scope.since => Proof::NotChecked,
            _ if row.admin_id.is_some_and(|id| id < scope.old_admins_below)
                && row.payload.get("via").is_none() =>
            {
                Proof::NotChecked
            }
            (Some(_), None) => Proof::Missing,
            (Some(key), Some(mac)) if key.check(&row.content(), mac, row.id) => Proof::Valid,
            (Some(_), Some(_)) => Proof::Missing,
        }
    }

    /// Whether the audit row `row` proves who wrote it, for the pages that show it:
    /// `false` means "written by direct SQL, whatever it claims".
    pub async fn audit_row_proven(&self, row: &ChainRow) -> Result<bool, AppError> {
        let scope = self.proof_scope().await?;
        Ok(self.claim_holds(row, scope))
    }

    /// The ids of `rows` whose claim of who wrote them is not proven (one read of the
    /// proofs boundary per page).
    pub async fn unproven(
        &self,
        rows: &[vexil_store::AuditRow],
    ) -> Result<std::collections::HashSet<i64>, AppError> {
        if self.audit_mac.is_none() {
            return Ok(std::collections::HashSet::new());
        }
        let scope = self.proof_scope().await?;
        Ok(rows
            .iter()
            .filter(|row| !self.claim_holds(&row.chain_row(), scope))
            .map(|row| row.id)
            .collect())
    }

    fn claim_holds(&self, row: &ChainRow, scope: ProofScope) -> bool {
        match self.proof(row, scope) {
            Proof::Valid | Proof::NotChecked => true,
            Proof::Missing => !audit_chain::claims_vexil(row),
        }
    }

    /// Seals what is pending (best effort), then walks the whole log and its chain:
    /// the first row changed, removed, inserted out of order or reordered, a row
    /// that claims vexil wrote it without proof, or an anchor the chain lost.
    pub async fn verify_audit(&self, anchor: Option<Anchor>) -> Result<AuditCheck, AppError> {
        if let Err(error) = self.seal_audit().await {
            tracing::warn!(error = %vexil_core::message::error_chain(&error), "could not seal the audit log before verifying it");
        }
        let scope = self.proof_scope().await?;
        let outcome = self
            .db
            .verify_audit(anchor, &|row| self.proof(row, scope))
            .await?;
        Ok(AuditCheck {
            outcome,
            attribution_checked: self.audit_mac.is_some(),
        })
    }

    /// Writes the rows created in [since, until) with their links to `out`; returns
    /// how many. Nothing is deleted: retention is the archive's business.
    pub async fn export_audit(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        format: ExportFormat,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, AppError> {
        let _ = self.seal_audit().await;
        enum Sink<'a> {
            Jsonl(&'a mut (dyn Write + Send)),
            Csv(Box<csv::Writer<&'a mut (dyn Write + Send)>>),
        }
        let mut sink = match format {
            ExportFormat::Jsonl => Sink::Jsonl(out),
            ExportFormat::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
        };
        let mut count = 0u64;
        let mut write =
            |row: ChainRow, seal: Option<Seal>, prev_hash: Option<audit_chain::Hash>| {
                count += 1;
                let record = Record {
                    id: row.id,
                    created_at: row.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                    admin_id: row.admin_id,
                    action: row.action,
                    target_type: row.target_type,
                    target_id: row.target_id,
                    payload: row.payload,
                    mac: row.mac.as_deref().map(audit_chain::hex),
                    prev_id: seal.as_ref().map(|s| s.prev_id),
                    prev_hash: seal.as_ref().and(prev_hash).map(|h| audit_chain::hex(&h)),
                    row_hash: seal.as_ref().map(|s| audit_chain::hex(&s.row_hash)),
                    hash: seal.as_ref().map(|s| audit_chain::hex(&s.hash)),
                };
                match &mut sink {
                    Sink::Jsonl(out) => {
                        serde_json::to_writer(&mut **out, &record)?;
                        out.write_all(b"\n")
                    }
                    Sink::Csv(writer) => writer
                        .serialize(record.map_payload(|p| p.to_string()))
                        .map_err(std::io::Error::other),
                }
            };
        self.db.audit_rows_sealed(since, until, &mut write).await?;
        match sink {
            Sink::Jsonl(out) => out.flush(),
            Sink::Csv(mut writer) => writer.flush(),
        }
        .map_err(export_error)?;
        Ok(count)
    }

    /// Verifies an export file (JSON Lines or CSV, told apart by its first byte)
    /// without the database: the chain within it, its anchor, and the proofs it
    /// carries (a row without one is not judged: only the database knows which
    /// rows predate proofs).
    pub fn verify_audit_file(
        &self,
        file: &str,
        reader: impl BufRead,
        anchor: Option<Anchor>,
    ) -> Result<AuditCheck, AppError> {
        let bad = |line: u64, reason: String| {
            AppError::BadExport(BadExport {
                file: file.to_owned(),
                line,
                reason,
            })
        };
        let mut verifier: Option<Verifier> = None;
        let judge = |verifier: &mut Option<Verifier>,
                     line: u64,
                     record: Record<Value>|
         -> Result<Result<(), Fault>, AppError> {
            let (row, seal, prev) = record_row(record).map_err(|reason| bad(line, reason))?;
            let walker = verifier.get_or_insert_with(|| match prev {
                Some(prev) => Verifier::resume(prev, anchor),
                None => Verifier::new(anchor),
            });
            let proof = match (&self.audit_mac, &row.mac) {
                (Some(key), Some(mac)) if key.check(&row.content(), mac, row.id) => Proof::Valid,
                (Some(_), Some(_)) => Proof::Missing,
                _ => Proof::NotChecked,
            };
            Ok(walker.push(Some(&row), seal.as_ref(), proof))
        };
        let mut reader = reader;
        let first = reader
            .fill_buf()
            .map_err(|e| bad(0, format!("cannot read: {e}")))?
            .first()
            .copied();
        let mut rows = 0u64;
        if first == Some(b'{') {
            for (n, line) in reader.lines().enumerate() {
                let line_no = n as u64 + 1;
                let line = line.map_err(|e| bad(line_no, format!("cannot read: {e}")))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record: Record<Value> = serde_json::from_str(&line)
                    .map_err(|e| bad(line_no, format!("not an exported audit row: {e}")))?;
                rows += 1;
                if let Err(fault) = judge(&mut verifier, line_no, record)? {
                    return Ok(self.file_check(Err(fault)));
                }
            }
        } else {
            let mut csv = csv::Reader::from_reader(reader);
            for (n, record) in csv.deserialize::<Record<String>>().enumerate() {
                let line_no = n as u64 + 2;
                let record =
                    record.map_err(|e| bad(line_no, format!("not an exported audit row: {e}")))?;
                let payload: Value = serde_json::from_str(&record.payload)
                    .map_err(|e| bad(line_no, format!("payload is not JSON: {e}")))?;
                rows += 1;
                if let Err(fault) = judge(&mut verifier, line_no, record.map_payload(|_| payload))?
                {
                    return Ok(self.file_check(Err(fault)));
                }
            }
        }
        if rows == 0 {
            return Err(bad(1, "no audit rows in the file".to_owned()));
        }
        let verifier = verifier.unwrap_or_else(|| Verifier::new(anchor));
        Ok(self.file_check(verifier.finish()))
    }

    fn file_check(&self, outcome: Result<Verified, Fault>) -> AuditCheck {
        AuditCheck {
            outcome,
            attribution_checked: self.audit_mac.is_some(),
        }
    }
}

fn export_error(source: std::io::Error) -> AppError {
    AppError::Store(vexil_store::StoreError::Export { source })
}

/// A record read back as the chain's row, its seal, and the link before it.
fn record_row(record: Record<Value>) -> Result<(ChainRow, Option<Seal>, Option<Anchor>), String> {
    let hash = |what: &str, text: Option<String>| -> Result<Option<audit_chain::Hash>, String> {
        text.map(|t| {
            parse_hash(&t).ok_or_else(|| format!("{what} is not 64 hexadecimal characters"))
        })
        .transpose()
    };
    let created_at = DateTime::parse_from_rfc3339(&record.created_at)
        .map_err(|_| format!("created_at {:?} is not an RFC 3339 time", record.created_at))?
        .with_timezone(&Utc);
    let mac = record
        .mac
        .map(|m| hex::decode(m).map_err(|_| "mac is not hexadecimal".to_owned()))
        .transpose()?;
    let row_hash = hash("row_hash", record.row_hash)?;
    let link = hash("hash", record.hash)?;
    let prev_hash = hash("prev_hash", record.prev_hash)?;
    let seal = match (record.prev_id, row_hash, link) {
        (Some(prev_id), Some(row_hash), Some(hash)) => Some(Seal {
            audit_id: record.id,
            prev_id,
            row_hash,
            hash,
        }),
        (None, None, None) => None,
        _ => return Err("a seal needs prev_id, row_hash and hash together".to_owned()),
    };
    let prev = match (record.prev_id, prev_hash) {
        (Some(id), Some(hash)) if id != audit_chain::FIRST_PREV_ID => Some(Anchor { id, hash }),
        _ => None,
    };
    let row = ChainRow {
        id: record.id,
        created_at,
        admin_id: record.admin_id,
        action: record.action,
        target_type: record.target_type,
        target_id: record.target_id,
        payload: record.payload,
        mac,
    };
    Ok((row, seal, prev))
}
