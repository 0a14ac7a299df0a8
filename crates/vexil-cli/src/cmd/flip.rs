//! `vexil flip KEY --env ENV --on|--off --as NAME`: the break-glass path. It needs only
//! database access, goes through the same use case and role matrix as the console,
//! and is audited with `"via": "cli"`.

use vexil_app::Flip;
use vexil_core::audit::Via;

use crate::cli::{FlipArgs, GlobalArgs};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, args: &FlipArgs) -> anyhow::Result<Outcome> {
    let needs = if args.totp.is_some() {
        config::Needs::FlagsAndKey
    } else {
        config::Needs::Flags
    };
    // Before anything is read or a code spent: the same rule as the console's.
    let reason = vexil_core::audit::reason(args.reason.as_deref())?;
    let app = config::app(global, needs).await?;
    let actor = app.actor(&args.actor).await?;
    // A code elevates this one flip; it is used up even if the flip is then refused.
    let elevated = match &args.totp {
        Some(code) => {
            app.check_totp(&actor, code).await?;
            true
        }
        None => false,
    };
    let flip = Flip {
        flag_key: &args.key,
        env: &args.env,
        expected_from: None,
        to: args.on,
        elevated,
        reason,
        via: Via::Cli,
    };
    let flipped = app.flip(&actor, &flip).await?;
    let state = |on: bool| if on { "on" } else { "off" };
    output::line(format_args!(
        "{} in {}: {} -> {} (audit row {}, by {})",
        args.key,
        args.env,
        state(flipped.from),
        state(flipped.to),
        flipped.audit_id,
        actor.name
    ))?;
    Ok(Outcome::Success)
}
