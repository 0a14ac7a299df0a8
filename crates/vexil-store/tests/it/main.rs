//! vexil-store's contract suite: every test runs against a fresh SQLite file and a
//! fresh PostgreSQL database (`both!`), so the two backends keep one behaviour.

mod adopt;
mod adopt_shape;
mod audit;
mod connection;
mod files;
mod flags;
mod migrate;
mod promotions;
mod search_path;
mod sessions;
mod write_evidence;

pub(crate) use vexil_testkit::both;

/// A `console.flag.flip` entry at `at` for `flag`, by no account.
pub(crate) fn flip_audit(
    flag: &str,
    at: chrono::DateTime<chrono::Utc>,
    payload: serde_json::Value,
) -> vexil_store::NewAudit {
    vexil_store::NewAudit {
        created_at: at,
        admin_id: None,
        action: "console.flag.flip",
        target_type: "feature_flag",
        target_id: flag.to_owned(),
        payload,
    }
}
