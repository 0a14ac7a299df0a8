//! `Verifier`: walks the audit log and its seals in id order and names the first
//! `Fault`; `Proof` and `claims_vexil` judge who wrote a row.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Anchor, ChainRow, FIRST_PREV_ID, GENESIS, Hash, Seal, link};

/// Whether a row's claim of who wrote it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// It carries a valid proof that vexil wrote it.
    Valid,
    /// It carries no valid proof.
    Missing,
    /// Written before proofs existed (the row is older than the schema that added
    /// them), or not checked (no secret key was given).
    NotChecked,
}

/// Whether `row` claims to have been written by vexil: by an account, or through a
/// door other than direct SQL. Only such a claim needs a proof; the database's own
/// triggers write `admin_id` NULL and `"via": "sql"`, which is true of any row
/// without a proof.
pub fn claims_vexil(row: &ChainRow) -> bool {
    row.admin_id.is_some() || row.payload.get("via").and_then(Value::as_str) != Some("sql")
}

/// The first place the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The row's content is not what was sealed.
    Changed { id: i64 },
    /// A sealed row is gone.
    Removed { id: i64 },
    /// The row holds what was sealed for another row: rows were reordered.
    Reordered { id: i64, sealed_as: i64 },
    /// A row below the newest seal that was never sealed: inserted out of order
    /// (with an old id), or its seal removed.
    NotInChain { id: i64 },
    /// The seal itself was edited (its link does not follow from the one before).
    SealAltered { id: i64 },
    /// The row claims an account or a door of vexil's but carries no valid proof:
    /// written by direct SQL.
    Forged { id: i64 },
    /// The anchor's row is in the chain with another hash: history was rewritten.
    AnchorMismatch { anchor: Anchor },
    /// The anchor's row is not in the chain: history was rewritten or truncated, or
    /// the anchor is from another database.
    AnchorMissing { anchor: Anchor },
}

impl Fault {
    /// The row it names.
    pub fn id(&self) -> i64 {
        match *self {
            Fault::Changed { id }
            | Fault::Removed { id }
            | Fault::Reordered { id, .. }
            | Fault::NotInChain { id }
            | Fault::SealAltered { id }
            | Fault::Forged { id } => id,
            Fault::AnchorMismatch { anchor } | Fault::AnchorMissing { anchor } => anchor.id,
        }
    }

    /// A stable name for scripts (`--json`).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Changed { .. } => "changed",
            Fault::Removed { .. } => "removed",
            Fault::Reordered { .. } => "reordered",
            Fault::NotInChain { .. } => "inserted",
            Fault::SealAltered { .. } => "seal_altered",
            Fault::Forged { .. } => "forged",
            Fault::AnchorMismatch { .. } => "anchor_mismatch",
            Fault::AnchorMissing { .. } => "anchor_missing",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Changed { id } => write!(f, "audit row {id} was changed after it was sealed"),
            Fault::Removed { id } => write!(f, "audit row {id} was removed after it was sealed"),
            Fault::Reordered { id, sealed_as } => write!(
                f,
                "audit row {id} holds what was sealed as row {sealed_as}: rows were reordered"
            ),
            Fault::NotInChain { id } => write!(
                f,
                "audit row {id} is not in the chain although later rows are: inserted out of order (or its seal removed)"
            ),
            Fault::SealAltered { id } => {
                write!(
                    f,
                    "the seal of audit row {id} was altered: its link does not follow from the one before"
                )
            }
            Fault::Forged { id } => write!(
                f,
                "audit row {id} claims to be vexil's but carries no valid proof: written by direct SQL (or by a vexil without this VEXIL_SECRET_KEY)"
            ),
            Fault::AnchorMismatch { anchor } => write!(
                f,
                "anchor {anchor} does not match: row {} is sealed with another hash, history was rewritten",
                anchor.id
            ),
            Fault::AnchorMissing { anchor } => write!(
                f,
                "anchor {anchor} is not in the chain: history was rewritten or cut, or the anchor is from another database"
            ),
        }
    }
}

/// What a verification found when the chain holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// Rows sealed and intact.
    pub sealed: u64,
    /// Rows after the newest seal, not sealed yet.
    pub pending: u64,
    /// The oldest of those.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Rows whose authorship was checked and proven.
    pub proven: u64,
    /// The newest link.
    pub head: Option<Anchor>,
    /// The anchor given, found in the chain.
    pub anchor: Option<Anchor>,
}

/// Walks rows and seals in id order (each id once, with its row, its seal, or both)
/// and stops at the first fault.
#[derive(Debug, Clone)]
pub struct Verifier {
    prev_id: i64,
    prev_hash: Hash,
    anchor: Option<Anchor>,
    /// The first row after the head that has no seal.
    first_pending: Option<i64>,
    found: Verified,
}

impl Verifier {
    pub fn new(anchor: Option<Anchor>) -> Verifier {
        Verifier {
            prev_id: FIRST_PREV_ID,
            prev_hash: GENESIS,
            anchor,
            first_pending: None,
            found: Verified::default(),
        }
    }

    /// A walk that starts after the link `prev` (an export that begins mid-chain).
    pub fn resume(prev: Anchor, anchor: Option<Anchor>) -> Verifier {
        Verifier {
            prev_id: prev.id,
            prev_hash: prev.hash,
            ..Verifier::new(anchor)
        }
    }

    /// One id: its row (if it exists), its seal (if it has one), and whether the
    /// row's claim of authorship is proven.
    pub fn push(
        &mut self,
        row: Option<&ChainRow>,
        seal: Option<&Seal>,
        proof: Proof,
    ) -> Result<(), Fault> {
        match (row, seal) {
            (None, None) => Ok(()),
            (None, Some(seal)) => Err(Fault::Removed { id: seal.audit_id }),
            (Some(row), None) => {
                if self.found.head.is_some_and(|head| row.id < head.id) {
                    return Err(Fault::NotInChain { id: row.id });
                }
                self.found.pending += 1;
                self.first_pending.get_or_insert(row.id);
                self.found.oldest_pending = Some(
                    self.found
                        .oldest_pending
                        .map_or(row.created_at, |at| at.min(row.created_at)),
                );
                self.check_proof(row, proof)
            }
            (Some(row), Some(seal)) => {
                if let Some(id) = self.first_pending {
                    // A sealed row after unsealed ones: the sealer seals in id order,
                    // so those were slipped in below it after it was sealed.
                    return Err(Fault::NotInChain { id });
                }
                // A link that follows a row after the last one seen: that row and its
                // seal are both gone (a row whose seal alone is gone shows up above as
                // a row not in the chain).
                if seal.prev_id > self.prev_id {
                    return Err(Fault::Removed { id: seal.prev_id });
                }
                if seal.prev_id != self.prev_id {
                    return Err(Fault::SealAltered { id: row.id });
                }
                let row_hash = row.row_hash();
                if row_hash != seal.row_hash {
                    return Err(Fault::Changed { id: row.id });
                }
                let hash = link(&self.prev_hash, row.id, &row_hash);
                if hash != seal.hash {
                    return Err(Fault::SealAltered { id: row.id });
                }
                if let Some(anchor) = self.anchor
                    && anchor.id == row.id
                {
                    if anchor.hash != hash {
                        return Err(Fault::AnchorMismatch { anchor });
                    }
                    self.found.anchor = Some(anchor);
                }
                self.prev_id = row.id;
                self.prev_hash = hash;
                self.found.sealed += 1;
                self.found.head = Some(Anchor { id: row.id, hash });
                self.check_proof(row, proof)
            }
        }
    }

    fn check_proof(&mut self, row: &ChainRow, proof: Proof) -> Result<(), Fault> {
        match proof {
            Proof::Valid => {
                self.found.proven += 1;
                Ok(())
            }
            Proof::Missing if claims_vexil(row) => Err(Fault::Forged { id: row.id }),
            Proof::Missing | Proof::NotChecked => Ok(()),
        }
    }

    /// Ends the walk.
    pub fn finish(self) -> Result<Verified, Fault> {
        if let Some(anchor) = self.anchor
            && self.found.anchor.is_none()
        {
            return Err(Fault::AnchorMissing { anchor });
        }
        Ok(self.found)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::audit_chain::ChainRow;

    fn row(id: i64, flag: &str) -> ChainRow {
        ChainRow {
            id,
            created_at: Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap(),
            admin_id: Some(1),
            action: "console.flag.flip".to_owned(),
            target_type: "feature_flag".to_owned(),
            target_id: flag.to_owned(),
            payload: json!({"flag": flag, "env": "prod", "from": false, "to": true, "via": "console"}),
            mac: None,
        }
    }

    /// Seals `rows` in order, as the sealer does.
    fn seal(rows: &[ChainRow]) -> Vec<Seal> {
        crate::audit_chain::links(None, rows)
    }

    fn verify(
        rows: &[ChainRow],
        seals: &[Seal],
        anchor: Option<Anchor>,
    ) -> Result<Verified, Fault> {
        let mut ids: Vec<i64> = rows
            .iter()
            .map(|r| r.id)
            .chain(seals.iter().map(|s| s.audit_id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut verifier = Verifier::new(anchor);
        for id in ids {
            verifier.push(
                rows.iter().find(|r| r.id == id),
                seals.iter().find(|s| s.audit_id == id),
                Proof::NotChecked,
            )?;
        }
        verifier.finish()
    }

    fn rows() -> Vec<ChainRow> {
        vec![row(1, "a"), row(2, "b"), row(3, "c"), row(5, "d")]
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let rows = rows();
        let seals = seal(&rows[..3]);
        let found = verify(&rows, &seals, None).unwrap();
        assert_eq!((found.sealed, found.pending), (3, 1));
        assert_eq!(found.head.unwrap().id, 3);
        assert_eq!(found.head.unwrap().hash, seals[2].hash);
    }

    #[test]
    fn one_changed_byte_names_its_row() {
        let mut rows = rows();
        let seals = seal(&rows);
        rows[1].payload["to"] = json!(false);
        assert_eq!(verify(&rows, &seals, None), Err(Fault::Changed { id: 2 }));
    }

    #[test]
    fn a_removed_row_is_named() {
        let mut rows = rows();
        let seals = seal(&rows);
        rows.remove(2);
        assert_eq!(verify(&rows, &seals, None), Err(Fault::Removed { id: 3 }));
    }

    #[test]
    fn a_row_removed_with_its_seal_is_named_by_the_next_link() {
        let mut rows = rows();
        let mut seals = seal(&rows);
        rows.remove(2);
        seals.remove(2);
        assert_eq!(verify(&rows, &seals, None), Err(Fault::Removed { id: 3 }));
    }

    #[test]
    fn a_row_slipped_in_below_the_head_is_named() {
        let mut rows = rows();
        let seals = seal(&rows);
        rows.insert(3, row(4, "x"));
        assert_eq!(
            verify(&rows, &seals, None),
            Err(Fault::NotInChain { id: 4 })
        );
    }

    #[test]
    fn swapped_rows_break_at_the_first() {
        let mut rows = rows();
        let seals = seal(&rows);
        let (a, b) = (rows[0].clone(), rows[1].clone());
        rows[0] = ChainRow { id: 1, ..b };
        rows[1] = ChainRow { id: 2, ..a };
        // The row's hash leaves the id out: it is the hash sealed for row 2, which
        // the caller looks up to say "reordered".
        assert_eq!(verify(&rows, &seals, None), Err(Fault::Changed { id: 1 }));
        assert_eq!(rows[0].row_hash(), seals[1].row_hash);
    }

    #[test]
    fn an_edited_seal_is_named() {
        let rows = rows();
        let mut seals = seal(&rows);
        seals[1].hash[0] ^= 1;
        assert_eq!(
            verify(&rows, &seals, None),
            Err(Fault::SealAltered { id: 2 })
        );
        let mut seals = seal(&rows);
        seals[3].prev_id = 1;
        assert_eq!(
            verify(&rows, &seals, None),
            Err(Fault::SealAltered { id: 5 })
        );
    }

    #[test]
    fn anchors_prove_history_was_kept() {
        let rows = rows();
        let seals = seal(&rows);
        let anchor = Anchor {
            id: 2,
            hash: seals[1].hash,
        };
        assert_eq!(
            verify(&rows, &seals, Some(anchor)).unwrap().anchor,
            Some(anchor)
        );
        // The whole chain recomputed after a change: every link follows, but the
        // anchor kept outside no longer matches.
        let mut rewritten = rows.clone();
        rewritten[0].payload["to"] = json!(false);
        let resealed = seal(&rewritten);
        assert_eq!(
            verify(&rewritten, &resealed, Some(anchor)),
            Err(Fault::AnchorMismatch { anchor })
        );
        let elsewhere = Anchor {
            id: 9,
            hash: seals[1].hash,
        };
        assert_eq!(
            verify(&rows, &seals, Some(elsewhere)),
            Err(Fault::AnchorMissing { anchor: elsewhere })
        );
    }

    #[test]
    fn a_claim_without_proof_is_forged_and_direct_sql_is_not() {
        let mut verifier = Verifier::new(None);
        let mut sql = row(1, "a");
        sql.admin_id = None;
        sql.payload["via"] = json!("sql");
        assert_eq!(verifier.push(Some(&sql), None, Proof::Missing), Ok(()));
        assert_eq!(
            verifier.push(Some(&row(2, "a")), None, Proof::Missing),
            Err(Fault::Forged { id: 2 })
        );
        assert_eq!(
            verifier.push(Some(&row(3, "a")), None, Proof::Valid),
            Ok(())
        );
    }
}
