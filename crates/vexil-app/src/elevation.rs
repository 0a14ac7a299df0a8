//! Elevation: the TOTP step-up some actions need (docs/roles.md), decided here for
//! every door.
//!
//! - [`TotpCode`]: what an account typed, never printed.
//! - [`Elevation`]: proof that an account gave a good code less than one elevation
//!   window ago. Only this crate makes one: [`App::elevate`] (a code, audited and
//!   locked after repeated failures) or [`App::resume_elevation`] (a console session
//!   elevated earlier, its expiry capped at one window from now).
//! - [`StepUp`]: what a caller brings to a use case that may need elevation.
//! - [`App::authorize`]: the role first (a role that is too low spends no code and
//!   learns nothing more), then elevation where the matrix asks for it. A code sent
//!   for an action that needs none is neither checked nor spent, from every door.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use vexil_core::{Action, Clearance, Denied, check_role};

use crate::app::{Actor, App};
use crate::error::AppError;

/// How long a console session's elevation lasts unless the server says otherwise.
pub const DEFAULT_ELEVATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How far ahead of this process's clock another server's clock may be: an elevation
/// it wrote may end that much later than one window from now.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(1);

/// The longest text taken as a code: authenticator codes are six digits, and a longer
/// text is not worth hashing or recording.
const MAX_CODE_CHARS: usize = 16;

/// A TOTP code as typed (trimmed). Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    /// The code in `text`, or `None` when nothing was typed.
    pub fn new(text: &str) -> Option<TotpCode> {
        let text = text.trim();
        (!text.is_empty()).then(|| TotpCode(text.chars().take(MAX_CODE_CHARS).collect()))
    }

    /// [`TotpCode::new`] of an optional form or JSON field.
    pub fn from_field(text: Option<&str>) -> Option<TotpCode> {
        text.and_then(TotpCode::new)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(…)")
    }
}

/// An account's TOTP elevation, in force until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elevation {
    account_id: i64,
    until: DateTime<Utc>,
}

impl Elevation {
    /// When it ends.
    pub fn until(&self) -> DateTime<Utc> {
        self.until
    }

    fn holds_for(&self, actor: &Actor, now: DateTime<Utc>) -> bool {
        self.account_id == actor.id() && now < self.until
    }
}

/// What a caller brings towards an action that may need elevation.
#[derive(Debug, Clone, Copy)]
pub enum StepUp<'a> {
    /// Nothing: an action that needs elevation is refused (`ElevationRequired`).
    None,
    /// An elevation held already (a console session's).
    Held(&'a Elevation),
    /// A code for this request, with the client's address for the audit row. It is
    /// checked only if the action needs elevation, and only after everything else
    /// that could refuse the action.
    Code { code: &'a TotpCode, from: &'a str },
}

impl<'a> StepUp<'a> {
    /// A code if one was typed, else what is held, else nothing.
    pub fn from_parts(
        code: Option<&'a TotpCode>,
        held: Option<&'a Elevation>,
        from: &'a str,
    ) -> StepUp<'a> {
        match (code, held) {
            (Some(code), _) => StepUp::Code { code, from },
            (None, Some(held)) => StepUp::Held(held),
            (None, None) => StepUp::None,
        }
    }
}

impl App {
    /// The window an elevation lasts (`vexil serve --elevation-minutes`).
    pub fn with_elevation_window(mut self, window: std::time::Duration) -> App {
        self.elevation_window = window;
        self
    }

    pub fn elevation_window(&self) -> std::time::Duration {
        self.elevation_window
    }

    fn window(&self) -> TimeDelta {
        TimeDelta::from_std(self.elevation_window).unwrap_or(TimeDelta::MAX)
    }

    /// Elevates `actor` with a fresh TOTP `code` (accepted once only), or says why
    /// not. Both outcomes are audited (`console.auth.elevate`,
    /// `console.auth.elevate_failed`, with `from`); after `MAX_FAILURES` refused codes
    /// in `LOCK_WINDOW` the account may not try again until the window has passed, so
    /// that six digits cannot be guessed by trying them all.
    pub async fn elevate(
        &self,
        actor: &Actor,
        code: &TotpCode,
        from: &str,
    ) -> Result<Elevation, AppError> {
        self.check_elevation_code(actor, code, from).await?;
        Ok(Elevation {
            account_id: actor.id(),
            until: self.clock.now() + self.window(),
        })
    }

    /// The elevation a console session recorded for `actor`, if still in force. One
    /// that ends later than one window from now (plus clock skew between servers)
    /// was not written by vexil and is no elevation.
    pub fn resume_elevation(&self, actor: &Actor, until: DateTime<Utc>) -> Option<Elevation> {
        let now = self.clock.now();
        (now < until && until <= now + self.window() + CLOCK_SKEW).then(|| Elevation {
            account_id: actor.id(),
            until,
        })
    }

    /// May `actor` do `action` with what it brings? The role first, then elevation
    /// where the matrix asks for it: a held one, or `step_up`'s code, spent here.
    /// Returns the elevation a code made, for a door that keeps it (a console
    /// session).
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        step_up: StepUp<'_>,
    ) -> Result<Option<Elevation>, AppError> {
        match check_role(actor.role(), action)? {
            Clearance::Granted => Ok(None),
            Clearance::NeedsElevation => match step_up {
                StepUp::Held(held) if held.holds_for(actor, self.clock.now()) => Ok(None),
                StepUp::Code { code, from } => Ok(Some(self.elevate(actor, code, from).await?)),
                StepUp::Held(_) | StepUp::None => Err(Denied::ElevationRequired { action }.into()),
            },
        }
    }
}
