//! `App::stale_flags`: flags on in every env and unchanged for a while
//! (candidates to delete from code and the flags file), flags never flipped, and DB
//! rows no declaration claims, judged by `vexil_core::stale`. It lists; it deletes
//! nothing.

use std::collections::HashMap;

use vexil_core::stale::{Facts, Stale, judge};
use vexil_store::FlagRow;

use crate::app::App;
use crate::error::AppError;

/// Everything `stale_flags` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleFlags {
    /// The age past which a flag on everywhere is listed.
    pub days: u32,
    /// Declared flags, in file order, with why each is listed.
    pub flags: Vec<(String, Vec<Stale>)>,
    /// Rows of flags the flags file does not declare.
    pub undeclared_rows: Vec<FlagRow>,
}

impl App {
    /// The stale flags now; `days` is the age past which a flag on in every env counts.
    pub async fn stale_flags(&self, days: u32) -> Result<StaleFlags, AppError> {
        let rows = self.db.flag_rows().await?;
        let counts = self.db.flip_counts().await?;
        let mut flips: HashMap<&str, u64> = HashMap::new();
        for f in &counts {
            *flips.entry(f.flag.as_str()).or_default() += f.count;
        }
        let now = self.clock.now();
        let flags = self.flags.load();
        let mut listed = Vec::new();
        for decl in flags.iter() {
            let key = decl.key().as_str();
            let facts = Facts {
                key: key.to_owned(),
                rows: self
                    .envs
                    .iter()
                    .map(|env| {
                        // The newest of the row's write and its last audited flip: a
                        // direct `UPDATE` need not touch `updated_at`.
                        let last_flip = counts
                            .iter()
                            .find(|f| f.flag == key && f.env == env.as_str())
                            .map(|f| f.last_at);
                        rows.iter()
                            .find(|r| r.flag_key == key && r.env == env.as_str())
                            .map(|r| (r.value, r.updated_at.max(last_flip.unwrap_or(r.updated_at))))
                    })
                    .collect(),
                flips: flips.get(key).copied().unwrap_or(0),
            };
            let stale = judge(&facts, now, days);
            if !stale.is_empty() {
                listed.push((facts.key, stale));
            }
        }
        let undeclared_rows = rows
            .into_iter()
            .filter(|r| flags.get(&r.flag_key).is_none())
            .collect();
        Ok(StaleFlags {
            days,
            flags: listed,
            undeclared_rows,
        })
    }
}
