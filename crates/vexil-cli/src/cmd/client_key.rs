//! `vexil client-key create|list|revoke`: the keys applications follow `vexil serve`
//! with, printed once, stored only hashed. Database access is the credential here,
//! as for accounts and API tokens (the operator who can run this can read the
//! database anyway); each change is audited with `"via": "cli"`.

use secrecy::ExposeSecret;
use vexil_app::Admin;
use vexil_core::AppName;
use vexil_core::audit::Via;
use vexil_server::ClientKeyView;

use crate::cli::{ClientKeyCommand, GlobalArgs};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, command: ClientKeyCommand) -> anyhow::Result<Outcome> {
    let app = config::app(global, config::Needs::Database).await?;
    match command {
        ClientKeyCommand::Create { env, app: name } => {
            let env = app.envs().parse(&env)?;
            let name = AppName::parse(&name)?;
            let (id, key) = app
                .create_client_key(Admin::Cli, Via::Cli, &env, &name)
                .await?;
            // The one time the key is shown; only its hash is kept.
            output::line(key.expose_secret())?;
            output::diagnostic(format_args!(
                "client key {id} created for {name} in {env}: store it now, it is not shown again"
            ));
        }
        ClientKeyCommand::List(args) => {
            let keys = app.client_keys(Admin::Cli).await?;
            if args.json {
                let views: Vec<ClientKeyView> = keys.into_iter().map(ClientKeyView::from).collect();
                output::json(&views)?;
            } else {
                let mut table = output::table([
                    "id",
                    "env",
                    "app",
                    "key",
                    "created",
                    "by",
                    "last used",
                    "revoked",
                ]);
                for key in keys {
                    table.add_row([
                        key.id.to_string(),
                        key.env,
                        key.app,
                        format!("{}…", key.prefix),
                        key.created_at.to_rfc3339(),
                        key.created_by.unwrap_or_else(|| "cli".to_owned()),
                        key.last_used_at
                            .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339()),
                        key.revoked_at
                            .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339()),
                    ]);
                }
                output::line(table)?;
            }
        }
        ClientKeyCommand::Revoke { id } => {
            let key = app.revoke_client_key(Admin::Cli, Via::Cli, id).await?;
            output::line(format_args!(
                "client key {id} ({} in {}) is revoked",
                key.app, key.env
            ))?;
        }
    }
    Ok(Outcome::Success)
}
