//! What every console page shares: the header (`Chrome`), the message page every
//! error uses, and rendering a template with a status.

use std::cell::RefCell;

use askama::Template;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use vexil_core::{Action, Env};

use crate::console::session::Operator;

tokio::task_local! {
    /// The header of the signed-in account whose request is being answered, kept by
    /// `Operator` as it is extracted: an error page is drawn without the session, and
    /// still shows who is signed in, what they may open and how to sign out.
    static SIGNED_IN: RefCell<Option<Chrome>>;
}

/// Answers `request` with room for the signed-in header (a layer on the console's
/// pages).
pub(crate) async fn keep_header(request: Request, next: Next) -> Response {
    SIGNED_IN.scope(RefCell::new(None), next.run(request)).await
}

/// Keeps `operator`'s header for the error page of this request, if one is drawn.
pub(crate) fn remember(operator: &Operator) {
    let chrome = Chrome::signed_in(operator, "");
    // Outside the layer (a test's own router) there is nothing to keep it in.
    let _outside = SIGNED_IN.try_with(|kept| *kept.borrow_mut() = Some(chrome));
}

/// The page header: who is signed in, their role and elevation, the sign-out form.
#[derive(Clone)]
pub(crate) struct Chrome {
    pub(crate) account: Option<ChromeAccount>,
    pub(crate) csrf: String,
    /// Which navigation entry is the current page (`aria-current`).
    pub(crate) page: &'static str,
    /// Show the console's navigation even with no account known (error pages, which
    /// are drawn without the session: from them, one click goes anywhere).
    pub(crate) nav: bool,
    /// Show the flag pages (flags, promotions, deprecation, reconcile, instances) in
    /// the navigation: the account may see the flags.
    pub(crate) flag_pages: bool,
    /// Show the audit log in the navigation: the account may read it.
    pub(crate) audit: bool,
    /// Show the client keys page in the navigation: the account may manage them.
    pub(crate) client_keys: bool,
    /// Where the brand link goes: the flags, or the account page for a role that may
    /// not see them.
    pub(crate) home: &'static str,
    /// The env the page acts on, drawn as a coloured band under the header (prod
    /// red, staging amber): a page that flips in prod never looks like staging's.
    pub(crate) env: Option<String>,
}

#[derive(Clone)]
pub(crate) struct ChromeAccount {
    pub(crate) name: String,
    pub(crate) role: &'static str,
    /// `2026-11-25 18:40:02 UTC` while the session is elevated.
    pub(crate) elevated_until: Option<String>,
}

impl Chrome {
    /// The header of a page shown to no one in particular (sign-in, errors).
    pub(crate) fn anonymous() -> Chrome {
        Chrome {
            account: None,
            csrf: String::new(),
            page: "",
            nav: false,
            flag_pages: false,
            audit: false,
            client_keys: false,
            home: "/console/flags",
            env: None,
        }
    }

    /// The same header over a page that acts on `env`.
    pub(crate) fn in_env(mut self, env: &Env) -> Chrome {
        self.env = Some(env.to_string());
        self
    }

    /// The header of an error page: the signed-in account's, if this request had one
    /// (`remember`); else the navigation with every entry (each checks the role
    /// itself) and no account.
    pub(crate) fn error() -> Chrome {
        let kept = SIGNED_IN
            .try_with(|kept| kept.borrow().clone())
            .ok()
            .flatten();
        kept.unwrap_or_else(|| Chrome {
            nav: true,
            flag_pages: true,
            audit: true,
            ..Chrome::anonymous()
        })
    }

    /// The header of `operator`'s page: the navigation shows only what its role may
    /// open, so readonly and support see their account page and nothing that answers
    /// 403.
    pub(crate) fn signed_in(operator: &Operator, page: &'static str) -> Chrome {
        let may = |action| operator.actor.may(action).is_ok();
        let flag_pages = may(Action::ViewFlags);
        Chrome {
            account: Some(ChromeAccount {
                name: operator.actor.name().to_owned(),
                role: operator.actor.role().as_str(),
                elevated_until: operator.elevated_until().map(utc),
            }),
            csrf: operator.visitor.csrf().to_owned(),
            page,
            nav: true,
            flag_pages,
            audit: may(Action::ViewAudit),
            client_keys: may(Action::ManageClientKeys),
            home: if flag_pages {
                "/console/flags"
            } else {
                "/console/account"
            },
            env: None,
        }
    }
}

/// A page that says one thing: an error, a refusal, the database being down.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub(crate) status: StatusCode,
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) items: Vec<String>,
    /// The way back: the flags, or for a refusal by role the account page (which
    /// every role may open, and whose navigation shows only what it may).
    pub(crate) back: (&'static str, &'static str),
}

impl MessagePage {
    pub(crate) fn new(status: StatusCode, title: &str, message: &str) -> MessagePage {
        let chrome = Chrome::error();
        // Home as the header has it: the flags, or the account page for a role that
        // may not see them (a link that would answer 403 is no way back).
        let back = if chrome.home == "/console/account" {
            ("/console/account", "Back to your account")
        } else {
            ("/console/flags", "Back to the flags")
        };
        MessagePage {
            status,
            chrome,
            title: title.to_owned(),
            message: message.to_owned(),
            items: Vec::new(),
            back,
        }
    }

    /// The same page, pointing back at the account page.
    pub(crate) fn back_to_account(mut self) -> MessagePage {
        self.back = ("/console/account", "Back to your account");
        self
    }
}

impl IntoResponse for MessagePage {
    fn into_response(self) -> Response {
        html(self.status, &self)
    }
}

/// `template` rendered as the body of a `status` response.
pub(crate) fn html(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "a console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render\n",
            )
                .into_response()
        }
    }
}

/// A time as the console shows every time: UTC, to the second.
pub(crate) fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `a=1&b=two%20words` from the pairs that have a value.
pub(crate) fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let present: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(name, value)| value.filter(|v| !v.is_empty()).map(|v| (*name, v)))
        .collect();
    serde_urlencoded::to_string(present).unwrap_or_default()
}

/// A query or form parameter as text: trimmed, empty when absent.
pub(crate) fn param(value: &Option<String>) -> String {
    value.as_deref().unwrap_or_default().trim().to_owned()
}

/// 422 for a form shown again with its error, else 200.
pub(crate) fn status_for(error: &Option<String>) -> StatusCode {
    if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

/// "on" or "off".
pub(crate) fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}
