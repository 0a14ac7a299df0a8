//! `vexil user add|list|set-role|disable|totp|map-admin`: accounts, from the command
//! line, with nothing but database access (the way the first account is made).
//! `map-admin` maps an adopted console's admin id to a vexil account (docs/adopt.md);
//! `list` shows which accounts hold old admin ids.
//!
//! A password is read only from stdin, asked twice without echo on a terminal. `user
//! totp` prints the `otpauth://` URI once, with a QR code on a terminal.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use vexil_app::Admin;
use vexil_core::Role;

use crate::cli::{GlobalArgs, MapAdminArgs, UserCommand};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, command: UserCommand) -> anyhow::Result<Outcome> {
    let needs = match command {
        UserCommand::Totp { .. } => config::Needs::Key,
        _ => config::Needs::Database,
    };
    let app = config::app(global, needs).await?;
    match command {
        UserCommand::Add { name, role } => {
            let role = Role::parse(&role)?;
            let password = read_password()?;
            app.add_user(Admin::Cli, &name, role, &password).await?;
            output::line(format_args!("created account '{name}' with role {role}"))?;
        }
        UserCommand::List(args) => {
            let old_admins = app.old_admins().await?;
            let users: Vec<UserView> = app
                .users()
                .await?
                .into_iter()
                .map(|user| {
                    let old = old_admins.iter().find(|old| old.admin_id == user.id);
                    UserView {
                        old_console_admin: old.map(|old| OldAdminView {
                            id: old.admin_id,
                            mapped_to: old.account.as_ref().map(|(_, name)| name.clone()),
                        }),
                        name: user.name,
                        role: user.role,
                        disabled: user.disabled,
                        totp_enrolled: user.totp_secret.is_some(),
                        created_at: user.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    }
                })
                .collect();
            if args.json {
                output::json(&users)?;
            } else {
                let mut table = output::table(["name", "role", "status", "totp", "created"]);
                for user in &users {
                    let status = match (&user.old_console_admin, user.disabled) {
                        (Some(old), _) => match &old.mapped_to {
                            Some(name) => format!("old console admin #{} → {name}", old.id),
                            None => format!("old console admin #{} (not mapped)", old.id),
                        },
                        (None, true) => "disabled".to_owned(),
                        (None, false) => "active".to_owned(),
                    };
                    let status = status.as_str();
                    let totp = if user.totp_enrolled { "enrolled" } else { "-" };
                    table.add_row([
                        user.name.as_str(),
                        &user.role,
                        status,
                        totp,
                        &user.created_at,
                    ]);
                }
                output::line(table)?;
            }
        }
        UserCommand::SetRole { name, role } => {
            let role = Role::parse(&role)?;
            app.set_role(Admin::Cli, &name, role).await?;
            output::line(format_args!("account '{name}' now has role {role}"))?;
        }
        UserCommand::Disable { name } => {
            app.disable_user(Admin::Cli, &name).await?;
            output::line(format_args!("account '{name}' is disabled"))?;
        }
        UserCommand::MapAdmin(MapAdminArgs { id, name }) => {
            app.map_old_admin(Admin::Cli, id, &name).await?;
            output::line(format_args!(
                "old console admin #{id} is mapped to account '{name}'"
            ))?;
        }
        UserCommand::Totp { name } => {
            let uri = app.enrol_totp(Admin::Cli, &name).await?;
            // The one time the secret is shown: scan it now, it cannot be printed again.
            output::line(uri.expose_secret())?;
            // On a terminal, the same URI as a QR code to scan with a phone.
            if std::io::stdout().is_terminal() {
                output::line(qr_code(uri.expose_secret())?)?;
            }
            output::diagnostic(format_args!(
                "TOTP enrolled for '{name}': add the URI above to an authenticator app; it is not shown again"
            ));
        }
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct UserView {
    name: String,
    role: String,
    disabled: bool,
    totp_enrolled: bool,
    created_at: String,
    /// Set for the placeholder of an adopted console's admin (docs/adopt.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    old_console_admin: Option<OldAdminView>,
}

#[derive(Serialize)]
struct OldAdminView {
    id: i64,
    mapped_to: Option<String>,
}

/// `text` as a QR code drawn with Unicode half blocks, two modules per character cell.
fn qr_code(text: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).context("cannot draw the QR code")?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

/// Asks on the terminal with echo turned off *before* the prompt is shown, so that
/// nothing typed as soon as it appears is echoed (rpassword showed the prompt first
/// and turned echo off after, a window that a fast typist, a paste or a loaded
/// machine could hit). Echo comes back however the read ends.
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};

    struct Restore<'a> {
        tty: &'a std::fs::File,
        saved: rustix::termios::Termios,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.tty, OptionalActions::Now, &self.saved);
        }
    }

    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    // The Enter key still moves to the next line.
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Flush, &quiet)?;
    let _restore = Restore { tty: &tty, saved };
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

/// The new password: asked twice without echo on a terminal, else the whole of stdin
/// less one trailing line break. Never an argument, where `ps` and shell history
/// would keep it.
fn read_password() -> anyhow::Result<SecretString> {
    if std::io::stdin().is_terminal() {
        let first =
            SecretString::from(prompt_hidden("password: ").context("cannot read the password")?);
        let second =
            SecretString::from(prompt_hidden("again: ").context("cannot read the password")?);
        if first.expose_secret() != second.expose_secret() {
            bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from stdin")?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if password.is_empty() {
        bail!(
            "no password on stdin: pipe it in, e.g. `vexil user add NAME --role ops < password.txt`"
        );
    }
    Ok(SecretString::from(password.to_owned()))
}
