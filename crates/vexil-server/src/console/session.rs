//! The console session as handlers see it: `Visitor` (anyone, with the session's CSRF
//! token) and `Operator` (a signed-in account whose session has not run out).
//!
//! The session's data is one `SessionData` value under one key, so that what a
//! session may hold is written down here. Times in it are read against the app's
//! clock, so tests move time instead of waiting. tower-sessions expires the row
//! after `idle_timeout` of no saves; `Operator` also checks both limits itself and
//! saves `seen_at` at most once a minute, so a busy session costs no write per
//! request.
//!
//! The CSRF token is compared in constant time. The account is read again on every
//! request, so a disabled account is out at once and a new role applies. Sign-in and
//! elevation rotate the session id. An elevation is never honoured past one window from
//! now, and a session dated in the future is refused. `safe_next` returns only to
//! console paths.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use vexil_app::{Actor, AppError, Elevation, StepUp, TotpCode};

use crate::console::error::ConsoleError;
use crate::state::ServerState;

/// The one key the console's data lives under in a session.
const KEY: &str = "console";

/// How far apart the servers' clocks may be: a session's times may be this far in
/// the future before they are taken for forged.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(1);

/// How stale `seen_at` may get before a request saves it again.
const TOUCH_EVERY: TimeDelta = TimeDelta::minutes(1);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SessionData {
    /// The synchronizer token every form of this session carries (hex, 32 bytes).
    csrf: String,
    /// The signed-in account's name; `None` before sign-in.
    account: Option<String>,
    signed_in_at: Option<DateTime<Utc>>,
    seen_at: Option<DateTime<Utc>>,
    elevated_until: Option<DateTime<Utc>>,
    /// A self-service TOTP enrolment waiting for its first code: the secret sealed
    /// with the server's secret key (never in clear, even in the session row).
    pending_totp: Option<String>,
}

/// Anyone talking to the console, signed in or not.
pub(crate) struct Visitor {
    session: Session,
    data: SessionData,
    /// The client's address, as audit rows record it.
    pub(crate) ip: Option<IpAddr>,
    /// The path and query asked for, to come back to after signing in.
    pub(crate) path: String,
    /// The request is a form's POST (then lost if the session ran out: the sign-in
    /// page says nothing was changed).
    pub(crate) posted: bool,
}

impl Visitor {
    /// The address as text for audit rows ("unknown" without a socket, as in tests
    /// that call the router directly).
    pub(crate) fn from(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    pub(crate) fn csrf(&self) -> &str {
        &self.data.csrf
    }

    /// Refuses a form whose token is not this session's, in constant time.
    pub(crate) fn check_csrf(&self, sent: Option<&str>) -> Result<(), ConsoleError> {
        let sent = sent.unwrap_or_default().as_bytes();
        let ours = self.data.csrf.as_bytes();
        if ours.is_empty() || !bool::from(sent.ct_eq(ours)) {
            return Err(ConsoleError::Csrf);
        }
        Ok(())
    }

    /// Starts a signed-in session for `actor`: a new session id (the one used
    /// before sign-in is never the one used after) and a new CSRF token.
    pub(crate) async fn sign_in(
        mut self,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), ConsoleError> {
        self.session.cycle_id().await?;
        self.data = SessionData {
            csrf: new_token()?,
            account: Some(actor.name().to_owned()),
            signed_in_at: Some(now),
            seen_at: Some(now),
            elevated_until: None,
            pending_totp: None,
        };
        self.save().await
    }

    /// Ends the session: its row is deleted and its cookie cleared.
    pub(crate) async fn sign_out(self) -> Result<(), ConsoleError> {
        self.session.flush().await?;
        Ok(())
    }

    async fn save(&self) -> Result<(), ConsoleError> {
        self.session.insert(KEY, &self.data).await?;
        Ok(())
    }
}

impl FromRequestParts<ServerState> for Visitor {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let session =
            parts.extensions.get::<Session>().cloned().ok_or_else(|| {
                ConsoleError::Internal("no session layer on a console route".into())
            })?;
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        // Where to come back to after signing in: the page asked for; for a form
        // posted from a session that ran out, the page the form acts on (a POST
        // cannot be replayed as a GET, and must not be: its page may have changed).
        let posted = parts.method != Method::GET;
        let path = if posted {
            page_of_form(parts.uri.path()).to_owned()
        } else {
            parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned())
        };
        let data: SessionData = session.get(KEY).await?.unwrap_or_default();
        Ok(Visitor {
            session,
            data,
            ip,
            path,
            posted,
        })
    }
}

/// A signed-in account, acting through the console.
pub(crate) struct Operator {
    pub(crate) visitor: Visitor,
    pub(crate) actor: Actor,
    /// The session's TOTP elevation, if one is in force (vexil-app judges the
    /// recorded time: `App::resume_elevation`).
    elevation: Option<Elevation>,
}

impl Operator {
    /// Whether the session holds a TOTP elevation still in force.
    pub(crate) fn elevated(&self) -> bool {
        self.elevation.is_some()
    }

    pub(crate) fn elevated_until(&self) -> Option<DateTime<Utc>> {
        self.elevation.as_ref().map(Elevation::until)
    }

    /// The code a form sent, if any, taken from the account's allowance of attempts
    /// (in memory, as the API's: parallel guesses cannot outrun the audit count).
    pub(crate) fn code(
        &self,
        state: &ServerState,
        field: Option<&str>,
    ) -> Result<Option<TotpCode>, ConsoleError> {
        let code = TotpCode::from_field(field);
        if code.is_some() {
            state.limit_account("totp", self.actor.name())?;
        }
        Ok(code)
    }

    /// What this session brings to a use case that may need elevation: a code typed
    /// with the request, else the session's elevation.
    pub(crate) fn step_up<'a>(&'a self, code: Option<&'a TotpCode>, from: &'a str) -> StepUp<'a> {
        StepUp::from_parts(code, self.elevation.as_ref(), from)
    }

    /// Keeps `elevation` (made by a code just now) in the session, under a new
    /// session id (a privilege change, like sign-in). `None` changes nothing.
    pub(crate) async fn keep(&mut self, elevation: Option<Elevation>) -> Result<(), ConsoleError> {
        let Some(elevation) = elevation else {
            return Ok(());
        };
        self.visitor.session.cycle_id().await?;
        self.visitor.data.elevated_until = Some(elevation.until());
        self.elevation = Some(elevation);
        self.visitor.save().await
    }

    pub(crate) fn pending_totp(&self) -> Option<&str> {
        self.visitor.data.pending_totp.as_deref()
    }

    pub(crate) async fn set_pending_totp(
        &mut self,
        sealed: Option<String>,
    ) -> Result<(), ConsoleError> {
        self.visitor.data.pending_totp = sealed;
        self.visitor.save().await
    }

    /// What the page header shows of this session.
    pub(crate) fn chrome(&self, page: &'static str) -> crate::console::page::Chrome {
        crate::console::page::Chrome::signed_in(self, page)
    }
}

impl FromRequestParts<ServerState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let mut visitor = Visitor::from_request_parts(parts, state).await?;
        let now = state.app.now();
        let config = &state.config;
        let sign_in = |expired| ConsoleError::SignInRequired {
            next: visitor.path.clone(),
            expired,
            dropped: visitor.posted,
        };
        let (Some(name), Some(signed_in_at), Some(seen_at)) = (
            visitor.data.account.clone(),
            visitor.data.signed_in_at,
            visitor.data.seen_at,
        ) else {
            return Err(sign_in(false));
        };
        let idle = TimeDelta::from_std(config.idle_timeout).unwrap_or(TimeDelta::MAX);
        let absolute = TimeDelta::from_std(config.absolute_timeout).unwrap_or(TimeDelta::MAX);
        // A sign-in or a visit in the future was never written by a server (servers'
        // clocks may differ by a little): the record was forged or tampered with.
        if signed_in_at > now + CLOCK_SKEW || seen_at > now + CLOCK_SKEW {
            tracing::warn!(account = %name, "refused a console session dated in the future");
            let error = sign_in(false);
            visitor.sign_out().await?;
            return Err(error);
        }
        if now - seen_at >= idle || now - signed_in_at >= absolute {
            let error = sign_in(true);
            visitor.sign_out().await?;
            return Err(error);
        }
        // The account as it is now: disabled or deleted since sign-in ends the
        // session; a changed role applies at once.
        let actor = match state.app.actor(&name).await {
            Ok(actor) => actor,
            Err(AppError::Disabled { .. } | AppError::UnknownAccount { .. }) => {
                let error = sign_in(false);
                visitor.sign_out().await?;
                return Err(error);
            }
            Err(error) => return Err(error.into()),
        };
        if now - seen_at >= TOUCH_EVERY {
            visitor.data.seen_at = Some(now);
            visitor.save().await?;
        }
        // No elevation lasts longer than one elevation window from now, whatever the
        // record says ("elevated until 2036" is not an elevation).
        let elevation = visitor
            .data
            .elevated_until
            .and_then(|until| state.app.resume_elevation(&actor, until));
        let operator = Operator {
            visitor,
            actor,
            elevation,
        };
        crate::console::page::remember(&operator);
        Ok(operator)
    }
}

/// 32 random bytes, hex.
pub(crate) fn new_token() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ConsoleError::Internal(format!("the system's random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The page a console form acts on, to come back to after signing in again: a flip
/// or a mark of a flag, that flag's page (both envs side by side, so no env is
/// assumed); any other form, the page it sits on.
fn page_of_form(path: &str) -> &str {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("console"), Some("flags"), Some(key)) if !key.is_empty() => {
            let end = "/console/flags/".len() + key.len();
            &path[..end]
        }
        (Some("console"), Some(page), _)
            if ["promotions", "reconcile", "client-keys", "account"].contains(&page) =>
        {
            &path[..("/console/".len() + page.len())]
        }
        _ => "/console/flags",
    }
}

/// `next` if it is a path of the console's own, else the default page: after
/// sign-in the browser goes back only to a relative path of ours (no open
/// redirect through `//evil.example` or `/\evil.example`).
pub(crate) fn safe_next(next: Option<&str>) -> Option<&str> {
    let next = next?;
    let ours =
        (next == "/console" || next.starts_with("/console/") || next.starts_with("/console?"))
            && !next.starts_with("/console/sign-in")
            && !next.contains("//")
            && !next.contains('\\')
            && !next.chars().any(char::is_control);
    ours.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_paths_are_returned_to() {
        for ours in [
            "/console/flags",
            "/console/flags?env=prod",
            "/console/audit?flag=a_b",
        ] {
            assert_eq!(safe_next(Some(ours)), Some(ours));
        }
        for theirs in [
            "https://evil.example/",
            "//evil.example/console",
            "/\\evil.example",
            "/console//evil.example",
            "/console\\@evil.example",
            "javascript:alert(1)",
            "/console/sign-in?next=/console/sign-in",
            "/console/\nflags",
            "/api/v1/flags",
            "/consolevil",
            "",
        ] {
            assert_eq!(safe_next(Some(theirs)), None, "{theirs:?}");
        }
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn a_form_lost_with_its_session_comes_back_to_its_page() {
        for (form, page) in [
            ("/console/flags/dark_mode/flip", "/console/flags/dark_mode"),
            (
                "/console/flags/dark_mode/promotions",
                "/console/flags/dark_mode",
            ),
            ("/console/promotions/4/approve", "/console/promotions"),
            ("/console/reconcile", "/console/reconcile"),
            ("/console/account/totp/confirm", "/console/account"),
            ("/console/sign-out", "/console/flags"),
            ("/console/flags", "/console/flags"),
        ] {
            assert_eq!(super::page_of_form(form), page, "{form}");
        }
    }
}
