//! `vexil token create|list|revoke`: API tokens, printed once, stored only hashed.

use secrecy::ExposeSecret;
use serde::Serialize;
use vexil_app::Admin;

use crate::cli::{GlobalArgs, TokenCommand};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, command: TokenCommand) -> anyhow::Result<Outcome> {
    let app = config::app(global, config::Needs::Database).await?;
    match command {
        TokenCommand::Create { name } => {
            let (id, token) = app.create_token(Admin::Cli, &name).await?;
            // The one time the token is shown; only its hash is kept.
            output::line(token.expose_secret())?;
            output::diagnostic(format_args!(
                "API token {id} created for '{name}': store it now, it is not shown again"
            ));
        }
        TokenCommand::List(args) => {
            let tokens: Vec<TokenView> = app
                .tokens()
                .await?
                .into_iter()
                .map(|t| TokenView {
                    id: t.id,
                    account: t.user_name,
                    token: format!("{}…", t.prefix),
                    created_at: t.created_at.to_rfc3339(),
                    last_used_at: t.last_used_at.map(|at| at.to_rfc3339()),
                    revoked_at: t.revoked_at.map(|at| at.to_rfc3339()),
                })
                .collect();
            if args.json {
                output::json(&tokens)?;
            } else {
                let mut table =
                    output::table(["id", "account", "token", "created", "last used", "revoked"]);
                for t in &tokens {
                    table.add_row([
                        t.id.to_string(),
                        t.account.clone(),
                        t.token.clone(),
                        t.created_at.clone(),
                        t.last_used_at.clone().unwrap_or_else(|| "-".to_owned()),
                        t.revoked_at.clone().unwrap_or_else(|| "-".to_owned()),
                    ]);
                }
                output::line(table)?;
            }
        }
        TokenCommand::Revoke { id } => {
            app.revoke_token(Admin::Cli, id).await?;
            output::line(format_args!("API token {id} is revoked"))?;
        }
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct TokenView {
    id: i64,
    account: String,
    token: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}
