//! `/console/client-keys`: the keys applications follow vexil with, with their last
//! use, superadmin only. `POST /console/client-keys` makes one and shows it in its
//! answer, once (never through a redirect: the key would have to be kept somewhere
//! to be shown after it); `POST /console/client-keys/{id}/revoke` revokes one. Both
//! are audited with `"via": "console"`.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use vexil_app::Admin;
use vexil_core::AppName;
use vexil_core::audit::Via;
use vexil_store::ClientKeyRow;

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome};
use crate::console::session::Operator;
use crate::state::ServerState;

struct KeyLine {
    id: i64,
    env: String,
    app: String,
    prefix: String,
    created_at: String,
    created_by: String,
    last_used_at: String,
    revoked_at: Option<String>,
}

impl From<ClientKeyRow> for KeyLine {
    fn from(row: ClientKeyRow) -> KeyLine {
        KeyLine {
            id: row.id,
            env: row.env,
            app: row.app,
            prefix: row.prefix,
            created_at: page::utc(row.created_at),
            created_by: row
                .created_by
                .unwrap_or_else(|| "an operator (CLI)".to_owned()),
            last_used_at: row
                .last_used_at
                .map_or_else(|| "never".to_owned(), page::utc),
            revoked_at: row.revoked_at.map(page::utc),
        }
    }
}

/// A key just made: shown in this one answer.
struct Created {
    env: String,
    app: String,
    key: String,
}

#[derive(Template)]
#[template(path = "client_keys.html")]
struct ClientKeysPage {
    chrome: Chrome,
    csrf: String,
    envs: Vec<String>,
    keys: Vec<KeyLine>,
    created: Option<Created>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct KeysQuery {
    /// A key just revoked.
    revoked: Option<String>,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<KeysQuery>,
) -> Result<Response, ConsoleError> {
    let notice = query
        .revoked
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok())
        .map(|id| format!("Client key {id} is revoked."));
    render(&state, &operator, None, notice).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateForm {
    csrf: Option<String>,
    env: Option<String>,
    app: Option<String>,
}

pub(crate) async fn create(
    State(state): State<ServerState>,
    operator: Operator,
    Form(form): Form<CreateForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let env = state
        .app
        .envs()
        .parse(form.env.as_deref().unwrap_or_default())?;
    let app = AppName::parse(form.app.as_deref().unwrap_or_default().trim())
        .map_err(vexil_app::AppError::from)?;
    let (id, key) = state
        .app
        .create_client_key(Admin::Account(&operator.actor), Via::Console, &env, &app)
        .await?;
    let created = Created {
        env: env.to_string(),
        app: app.to_string(),
        key: key.expose_secret().to_owned(),
    };
    let notice = format!("Client key {id} created.");
    render(&state, &operator, Some(created), Some(notice)).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RevokeForm {
    csrf: Option<String>,
}

pub(crate) async fn revoke(
    State(state): State<ServerState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let id: i64 = id
        .parse()
        .map_err(|_| ConsoleError::BadRequest(format!("{id:?} is not a client key's id")))?;
    state
        .app
        .revoke_client_key(Admin::Account(&operator.actor), Via::Console, id)
        .await?;
    Ok(Redirect::to(&format!("/console/client-keys?revoked={id}")).into_response())
}

async fn render(
    state: &ServerState,
    operator: &Operator,
    created: Option<Created>,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    let keys = state
        .app
        .client_keys(Admin::Account(&operator.actor))
        .await?;
    let page = ClientKeysPage {
        chrome: operator.chrome("client-keys"),
        csrf: operator.visitor.csrf().to_owned(),
        envs: state.app.envs().iter().map(ToString::to_string).collect(),
        keys: keys.into_iter().map(KeyLine::from).collect(),
        created,
        notice,
        error: None,
    };
    Ok(page::html(StatusCode::OK, &page))
}
