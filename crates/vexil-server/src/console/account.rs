//! `GET /console/account`: who you are, your role, and self-service TOTP enrolment:
//! `POST /console/account/totp` makes a secret (kept sealed in the session) and shows
//! its QR code, drawn as SVG on the server; `POST /console/account/totp/confirm`
//! stores it once a first code from the authenticator matches.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use qrcode::QrCode;
use qrcode::render::svg;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use vexil_app::{AppError, TotpCode};

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome};
use crate::console::session::Operator;
use crate::state::ServerState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AccountQuery {
    enrolled: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: Option<String>,
    totp: Option<String>,
}

/// An enrolment waiting for its first code.
struct Pending {
    /// The QR code, an SVG document of our own making (no outside text in it).
    svg: String,
    uri: String,
    /// The base32 secret in groups of four (`JBSW Y3DP EHPK 3PXP`), for typing into an
    /// authenticator that cannot scan: a run of 32 letters is easy to mistype.
    key: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    csrf: String,
    name: String,
    role: &'static str,
    enrolled: bool,
    /// Some action of the role needs elevation: the page offers it.
    elevation_helps: bool,
    pending: Option<Pending>,
    notice: Option<&'static str>,
    error: Option<String>,
}

pub(crate) async fn page(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<AccountQuery>,
) -> Result<Response, ConsoleError> {
    let notice = query
        .enrolled
        .is_some()
        .then_some("TOTP is set up: your authenticator's codes now elevate this account.");
    render(&state, &operator, notice, None).await
}

async fn render(
    state: &ServerState,
    operator: &Operator,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let enrolled = state.app.has_totp(operator.actor.name()).await?;
    let pending = match operator.pending_totp().filter(|_| !enrolled) {
        Some(sealed) => {
            let uri = state.app.pending_totp_uri(&operator.actor, sealed)?;
            let svg = QrCode::new(uri.expose_secret().as_bytes())
                .map_err(|e| ConsoleError::Internal(format!("cannot draw the QR code: {e}")))?
                .render::<svg::Color<'_>>()
                .min_dimensions(220, 220)
                .quiet_zone(true)
                .build();
            Some(Pending {
                svg,
                key: grouped_key(uri.expose_secret()),
                uri: uri.expose_secret().to_owned(),
            })
        }
        None => None,
    };
    let status = page::status_for(&error);
    let page = AccountPage {
        chrome: operator.chrome("account"),
        csrf: operator.visitor.csrf().to_owned(),
        name: operator.actor.name().to_owned(),
        elevation_helps: operator.actor.elevation_helps(),
        role: operator.actor.role().as_str(),
        enrolled,
        pending,
        notice,
        error,
    };
    Ok(page::html(status, &page))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct BeginForm {
    csrf: Option<String>,
    password: Option<String>,
}

/// Starts enrolment, after the account's password (`App::begin_own_totp`: checked as
/// a sign-in is, after "already enrolled").
pub(crate) async fn begin_totp(
    State(state): State<ServerState>,
    mut operator: Operator,
    Form(form): Form<BeginForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    state.limit_account("totp", operator.actor.name())?;
    let password = SecretString::from(form.password.unwrap_or_default());
    let from = operator.visitor.from();
    let pending = match state
        .app
        .begin_own_totp(&operator.actor, &password, &from)
        .await
    {
        Ok(pending) => pending,
        Err(AppError::BadCredentials) => {
            return render(
                &state,
                &operator,
                None,
                Some("wrong password: TOTP set-up needs your current password".to_owned()),
            )
            .await;
        }
        Err(error) => return Err(error.into()),
    };
    operator.set_pending_totp(Some(pending.sealed)).await?;
    Ok(Redirect::to("/console/account").into_response())
}

pub(crate) async fn confirm_totp(
    State(state): State<ServerState>,
    mut operator: Operator,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let Some(sealed) = operator.pending_totp().map(str::to_owned) else {
        return Err(ConsoleError::BadRequest(
            "no TOTP set-up is under way in this session: start it on the account page".into(),
        ));
    };
    let confirmed = match TotpCode::from_field(form.totp.as_deref()) {
        Some(code) => {
            state
                .app
                .confirm_own_totp(&operator.actor, &sealed, &code)
                .await
        }
        None => Err(AppError::TotpInvalid),
    };
    match confirmed {
        Ok(()) => {
            operator.set_pending_totp(None).await?;
            Ok(Redirect::to("/console/account?enrolled=1").into_response())
        }
        Err(error @ AppError::TotpInvalid) => {
            render(
                &state,
                &operator,
                None,
                Some(format!(
                    "{error}: type the code your authenticator shows now"
                )),
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

/// The `secret` parameter of an `otpauth://` URI in groups of four characters.
/// The spaces are for reading: the page says they may be typed or left out.
fn grouped_key(uri: &str) -> String {
    let query = uri.split_once('?').map_or("", |(_, query)| query);
    let secret = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))
        .unwrap_or_default();
    let chars: Vec<char> = secret.chars().collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::grouped_key;

    #[test]
    fn the_key_is_shown_in_groups_of_four() {
        let uri = "otpauth://totp/vexil:root?secret=JBSWY3DPEHPK3PXPAB&digits=6&issuer=vexil";
        assert_eq!(grouped_key(uri), "JBSW Y3DP EHPK 3PXP AB");
        assert_eq!(grouped_key("otpauth://totp/vexil:root"), "");
    }
}
