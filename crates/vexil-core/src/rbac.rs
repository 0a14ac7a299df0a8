//! Roles and the role matrix (docs/roles.md), as one table behind `check_role`.
//!
//! vexil-app calls `check_role` for every use case; nothing compares roles itself
//! (invariant 5): the console asks `check_role` too, to show what a role may do. A denial says which of the two reasons applies, because the
//! API answers them with different codes (`forbidden`, `elevation_required`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::message::quoted;
use crate::risk::Risk;

/// An account's role, from least to most privileged (the derived order is the
/// privilege order, which the matrix relies on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Readonly,
    Support,
    Ops,
    Superadmin,
}

/// Why a text is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {} (expected one of: readonly, support, ops, superadmin)",
    quoted(text)
)]
pub struct RoleError {
    text: String,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Readonly, Role::Support, Role::Ops, Role::Superadmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Readonly => "readonly",
            Role::Support => "support",
            Role::Ops => "ops",
            Role::Superadmin => "superadmin",
        }
    }

    /// Exact, lower-case spellings only.
    pub fn parse(text: &str) -> Result<Role, RoleError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| RoleError {
                text: text.to_owned(),
            })
    }
}

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::parse(text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something an account asks to do. Actions on a flag carry its risk, since the risk
/// is what the matrix turns on; the others have none to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Open `/console/flags`, list flags in the API or the CLI.
    ViewFlags,
    /// Open `/console/audit`, query the audit log.
    ViewAudit,
    Flip(Risk),
    /// Mark a flag active for prod, opening a promotion.
    MarkPromote,
    ApprovePromotion,
    /// Write the prod row of an approved promotion.
    Promote(Risk),
    RejectPromotion,
    /// Create accounts, change roles, disable accounts, enrol TOTP and manage API
    /// tokens for anyone but oneself.
    ManageAccounts,
    /// Create, list and revoke client keys (what applications follow a server with).
    ManageClientKeys,
    /// Write rows from an app's `FLAG_*` config (`vexil import`), the highest risk
    /// among the flags written (docs/import.md).
    Import(Risk),
}

impl Action {
    /// Every action, for tables that walk the whole matrix.
    pub const ALL: [Action; 16] = [
        Action::ViewFlags,
        Action::ViewAudit,
        Action::Flip(Risk::Low),
        Action::Flip(Risk::Medium),
        Action::Flip(Risk::High),
        Action::MarkPromote,
        Action::ApprovePromotion,
        Action::Promote(Risk::Low),
        Action::Promote(Risk::Medium),
        Action::Promote(Risk::High),
        Action::RejectPromotion,
        Action::ManageAccounts,
        Action::ManageClientKeys,
        Action::Import(Risk::Low),
        Action::Import(Risk::Medium),
        Action::Import(Risk::High),
    ];
}

impl fmt::Display for Action {
    /// The action as the end of "may not …".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::ViewFlags => f.write_str("view the flags"),
            Action::ViewAudit => f.write_str("view the audit log"),
            Action::Flip(risk) => write!(f, "flip a {risk}-risk flag"),
            Action::MarkPromote => f.write_str("mark a flag active for prod"),
            Action::ApprovePromotion => f.write_str("approve a promotion"),
            Action::Promote(risk) => write!(f, "promote a {risk}-risk flag"),
            Action::RejectPromotion => f.write_str("reject a promotion"),
            Action::ManageAccounts => f.write_str("manage accounts"),
            Action::ManageClientKeys => f.write_str("manage client keys"),
            Action::Import(risk) => write!(f, "import the variable of a {risk}-risk flag"),
        }
    }
}

/// What an action needs: a minimum role, and for some a fresh TOTP elevation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub role: Role,
    pub elevation: bool,
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The role is too low; elevation would not help.
    #[error("role {role} may not {action}: it needs {required}")]
    Forbidden {
        role: Role,
        action: Action,
        required: Role,
    },
    /// The role suffices, but the session (or request) is not elevated with TOTP.
    #[error("to {action}, elevate with a fresh TOTP code first")]
    ElevationRequired { action: Action },
}

/// The matrix of docs/roles.md, one row per action. This match is the only place a role is compared.
pub fn requirement(action: Action) -> Requirement {
    use Role::{Ops, Superadmin};
    let role = |role| Requirement {
        role,
        elevation: false,
    };
    let elevated = |role| Requirement {
        role,
        elevation: true,
    };
    match action {
        Action::ViewFlags | Action::ViewAudit => role(Ops),
        Action::Flip(Risk::Low) => role(Ops),
        Action::Flip(Risk::Medium) => role(Superadmin),
        Action::Flip(Risk::High) => elevated(Superadmin),
        Action::MarkPromote
        | Action::ApprovePromotion
        | Action::RejectPromotion
        | Action::ManageAccounts
        | Action::ManageClientKeys => role(Superadmin),
        Action::Promote(Risk::Low | Risk::Medium) => role(Superadmin),
        // Promoting a high-risk flag writes the same prod row as flipping it, which
        // needs elevation, so promoting one needs elevation too (and a typed phrase,
        // checked by the promotion: docs/promotion.md).
        Action::Promote(Risk::High) => elevated(Superadmin),
        // An import writes many rows at once, each a flip, and is how a deployment
        // adopts its config: an administrator's act, whatever the risk; a high-risk
        // flag's row needs elevation, as its flip would.
        Action::Import(Risk::Low | Risk::Medium) => role(Superadmin),
        Action::Import(Risk::High) => elevated(Superadmin),
    }
}

/// What a role may do about an action it is allowed: the action at once, or only
/// once it holds a TOTP elevation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Clearance {
    Granted,
    NeedsElevation,
}

/// May an account with `role` do `action`, as far as its role goes? A role that is too
/// low is `Forbidden` whatever elevation it might hold; a role that suffices learns
/// whether elevation is still needed (vexil-app decides that part, since only it can
/// tell whether an elevation is held).
pub fn check_role(role: Role, action: Action) -> Result<Clearance, Denied> {
    let required = requirement(action);
    if role < required.role {
        return Err(Denied::Forbidden {
            role,
            action,
            required: required.role,
        });
    }
    Ok(if required.elevation {
        Clearance::NeedsElevation
    } else {
        Clearance::Granted
    })
}
