//! `Risk`, the `low | medium | high` tag every declaration carries (docs/flags-file.md).
//!
//! The risk of a flag decides who may flip it (see `rbac`), so it is a closed enum
//! parsed exactly: `High` or `critical` is an error, never a guess.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::message::quoted;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// Why a text is not a risk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown risk {} (expected one of: low, medium, high)", quoted(text))]
pub struct RiskError {
    text: String,
}

impl Risk {
    pub const ALL: [Risk; 3] = [Risk::Low, Risk::Medium, Risk::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    /// Exact, lower-case spellings only, as in the flags file.
    pub fn parse(text: &str) -> Result<Risk, RiskError> {
        Risk::ALL
            .into_iter()
            .find(|risk| risk.as_str() == text)
            .ok_or_else(|| RiskError {
                text: text.to_owned(),
            })
    }
}

impl FromStr for Risk {
    type Err = RiskError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Risk::parse(text)
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_spellings_only() {
        assert_eq!(Risk::parse("low"), Ok(Risk::Low));
        assert_eq!(Risk::parse("medium"), Ok(Risk::Medium));
        assert_eq!(Risk::parse("high"), Ok(Risk::High));
        for bad in ["High", "extreme", "", " low"] {
            assert_eq!(
                Risk::parse(bad).unwrap_err().to_string(),
                format!("unknown risk '{bad}' (expected one of: low, medium, high)")
            );
        }
    }
}
