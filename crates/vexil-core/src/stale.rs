//! Stale flags: flags whose work is done or never started, as candidates
//! for an operator to clean up. A flag on in every env and unchanged for a while is
//! a candidate to delete from code and from the flags file; a flag never flipped may
//! be unused. Both are hints for a person, never acted on.
//!
//! `judge` takes each flag's rows and flip count, the time and the age in days
//! (`DEFAULT_STALE_DAYS`, 30) past which a flag on everywhere is listed.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// The default age past which a flag on everywhere counts as stale.
pub const DEFAULT_STALE_DAYS: u32 = 30;

/// What vexil knows about one declared flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub key: String,
    /// Its DB row in each configured env, `None` where it has none: the value and
    /// when it was last written.
    pub rows: Vec<Option<(bool, DateTime<Utc>)>>,
    /// Audited `console.flag.flip` rows of the flag, every env.
    pub flips: u64,
}

/// Why a flag is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stale {
    /// A row in every env, each on, none written for `days` days (since `since`).
    OnEverywhere { since: DateTime<Utc>, days: i64 },
    /// No audited flip in any env: nobody has changed it through vexil or SQL.
    NeverFlipped,
}

impl Stale {
    /// In words, for a table cell.
    pub fn describe(&self) -> String {
        match self {
            Stale::OnEverywhere { days, .. } => {
                format!("on in every env, unchanged for {days} d: delete it from code and YAML?")
            }
            Stale::NeverFlipped => "never flipped: still used?".to_owned(),
        }
    }
}

/// Why `facts` is stale at `now`, if it is; `days` is the age past which a flag on
/// everywhere is listed.
pub fn judge(facts: &Facts, now: DateTime<Utc>, days: u32) -> Vec<Stale> {
    let mut found = Vec::new();
    let on_everywhere: Option<Vec<DateTime<Utc>>> = facts
        .rows
        .iter()
        .map(|row| row.filter(|(on, _)| *on).map(|(_, at)| at))
        .collect();
    if let Some(times) = on_everywhere
        && let Some(since) = times.into_iter().max()
    {
        let age = now - since;
        if age >= TimeDelta::days(i64::from(days)) {
            found.push(Stale::OnEverywhere {
                since,
                days: age.num_days(),
            });
        }
    }
    if facts.flips == 0 {
        found.push(Stale::NeverFlipped);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::days(days)
    }

    fn facts(rows: Vec<Option<(bool, DateTime<Utc>)>>, flips: u64) -> Facts {
        Facts {
            key: "dark_mode".to_owned(),
            rows,
            flips,
        }
    }

    #[test]
    fn on_everywhere_and_old_is_stale_from_the_newest_write() {
        let f = facts(vec![Some((true, at(0))), Some((true, at(10)))], 2);
        assert_eq!(judge(&f, at(39), 30), []);
        assert_eq!(
            judge(&f, at(40), 30),
            [Stale::OnEverywhere {
                since: at(10),
                days: 30
            }]
        );
        assert_eq!(
            judge(&f, at(40), 30)[0].describe(),
            "on in every env, unchanged for 30 d: delete it from code and YAML?"
        );
    }

    #[test]
    fn off_somewhere_or_without_a_row_somewhere_is_not() {
        let off = facts(vec![Some((true, at(0))), Some((false, at(0)))], 2);
        assert_eq!(judge(&off, at(100), 30), []);
        let missing = facts(vec![Some((true, at(0))), None], 1);
        assert_eq!(judge(&missing, at(100), 30), []);
    }

    #[test]
    fn never_flipped_is_listed_whatever_its_rows() {
        assert_eq!(
            judge(&facts(vec![None, None], 0), at(0), 30),
            [Stale::NeverFlipped]
        );
        // Rows older than the audit triggers, on for long, never flipped: both.
        let old = facts(vec![Some((true, at(0))), Some((true, at(0)))], 0);
        assert_eq!(judge(&old, at(31), 30).len(), 2);
    }
}
