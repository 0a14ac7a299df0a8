//! The audit log's hash chain and its verification (docs/audit-integrity.md).
//!
//! Every audit row is sealed, in id order, into a chain of links: a link's hash is
//! SHA-256 over the previous link's hash, the row's id and the row's hash (SHA-256 of
//! the row's canonical encoding, `ChainRow::row_hash`). Changing, removing or
//! reordering a sealed row, or slipping a row in below the newest seal, breaks the
//! chain at that row; `Verifier` walks rows and seals in id order and names the first
//! row where it breaks. Rewriting the whole chain after the fact is what an anchor
//! (`Anchor`, an `ID:HASH` kept outside the database) catches.
//!
//! The encoding is length-prefixed, so no two different rows encode alike, and the
//! JSON payload is written with its object keys sorted, so the database's own
//! re-ordering of JSON (PostgreSQL's `jsonb`) does not change a row's hash.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod verifier;

pub use verifier::{Fault, Proof, Verified, Verifier, claims_vexil};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The `prev_id` of the first link: no row has id 0.
pub const FIRST_PREV_ID: i64 = 0;

/// The hash the first link chains from.
pub const GENESIS: Hash = [0; 32];

/// An audit row as the chain sees it: every stored column.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub admin_id: Option<i64>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub payload: Value,
    /// vexil's proof that it wrote the row (`nonce || HMAC`), if it carries one.
    pub mac: Option<Vec<u8>>,
}

/// The canonical encoding of what a row says, without its id and its proof: what the
/// proof (a MAC) covers, and with the proof what the chain seals.
pub fn content(
    created_at: DateTime<Utc>,
    admin_id: Option<i64>,
    action: &str,
    target_type: &str,
    target_id: &str,
    payload: &Value,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"vexil.audit.row.v1\0");
    put(
        &mut out,
        created_at
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
            .as_bytes(),
    );
    match admin_id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.to_be_bytes());
        }
    }
    put(&mut out, action.as_bytes());
    put(&mut out, target_type.as_bytes());
    put(&mut out, target_id.as_bytes());
    let mut json = String::with_capacity(128);
    canonical_json(payload, &mut json);
    put(&mut out, json.as_bytes());
    out
}

impl ChainRow {
    /// What the row says, canonically encoded (see [`content`]).
    pub fn content(&self) -> Vec<u8> {
        content(
            self.created_at,
            self.admin_id,
            &self.action,
            &self.target_type,
            &self.target_id,
            &self.payload,
        )
    }

    /// SHA-256 of the row's content and its proof: what its link seals. It leaves the
    /// id out, so that a row moved to another id is recognised as moved.
    pub fn row_hash(&self) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update(self.content());
        match &self.mac {
            None => hasher.update([0]),
            Some(mac) => {
                hasher.update([1]);
                hasher.update((mac.len() as u64).to_be_bytes());
                hasher.update(mac);
            }
        }
        hasher.finalize().into()
    }
}

/// The hash of the link that seals row `id` (whose hash is `row_hash`) after `prev`.
pub fn link(prev: &Hash, id: i64, row_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(b"vexil.audit.link.v1\0");
    hasher.update(prev);
    hasher.update(id.to_be_bytes());
    hasher.update(row_hash);
    hasher.finalize().into()
}

/// The links that seal `rows` (in id order) after the link `after` (`None`: from the
/// start of the chain), as the sealer writes them.
pub fn links(after: Option<Anchor>, rows: &[ChainRow]) -> Vec<Seal> {
    let (mut prev_id, mut prev_hash) = after.map_or((FIRST_PREV_ID, GENESIS), |a| (a.id, a.hash));
    rows.iter()
        .map(|row| {
            let row_hash = row.row_hash();
            let hash = link(&prev_hash, row.id, &row_hash);
            let seal = Seal {
                audit_id: row.id,
                prev_id,
                row_hash,
                hash,
            };
            (prev_id, prev_hash) = (row.id, hash);
            seal
        })
        .collect()
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// JSON with object keys in byte order and no whitespace.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A stored link: the seal of one audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub audit_id: i64,
    /// The row sealed just before, or [`FIRST_PREV_ID`].
    pub prev_id: i64,
    pub row_hash: Hash,
    pub hash: Hash,
}

/// A link's id and hash, as `vexil audit head` prints it: `ID:HASH` (hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub id: i64,
    pub hash: Hash,
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.id, hex(&self.hash))
    }
}

/// Why an anchor did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "anchor '{0}' is not ID:HASH (a row id, a colon and 64 hexadecimal characters, as `vexil audit head` prints)"
)]
pub struct BadAnchor(pub String);

impl std::str::FromStr for Anchor {
    type Err = BadAnchor;

    fn from_str(text: &str) -> Result<Anchor, BadAnchor> {
        let bad = || BadAnchor(crate::message::one_line(text));
        let (id, hash) = text.trim().split_once(':').ok_or_else(bad)?;
        let id: i64 = id.parse().ok().filter(|id| *id > 0).ok_or_else(bad)?;
        let hash = parse_hash(hash).ok_or_else(bad)?;
        Ok(Anchor { id, hash })
    }
}

/// 64 hexadecimal characters as a hash.
pub fn parse_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(hash)
}

/// A hash in lowercase hexadecimal.
pub fn hex(hash: &[u8]) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

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

    #[test]
    fn anchors_print_and_parse() {
        let anchor = Anchor {
            id: 42,
            hash: [0xab; 32],
        };
        let text = anchor.to_string();
        assert_eq!(text, format!("42:{}", "ab".repeat(32)));
        assert_eq!(text.parse::<Anchor>(), Ok(anchor));
        for bad in [
            "",
            "42",
            "x:ab",
            "0:00",
            &format!("42:{}", "ab".repeat(31)),
            &format!("42:{}", "zz".repeat(32)),
        ] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn jsonb_key_order_does_not_change_the_hash() {
        let a = row(1, "a");
        let mut b = a.clone();
        b.payload = serde_json::from_str(
            r#"{"to": true, "via": "console", "env": "prod", "flag": "a", "from": false}"#,
        )
        .unwrap();
        assert_eq!(a.row_hash(), b.row_hash());
    }
}
