//! `vexil flip KEY --env ENV --on|--off --as NAME`: the break-glass path. It needs only
//! database access, goes through the same use case and role matrix as the console,
//! and is audited with `"via": "cli"`.

use vexil_app::{Flip, TotpCode, parse_flag_key};
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
    let key = parse_flag_key(&args.key)?;
    let env = app.envs().parse(&args.env)?;
    let flip = Flip {
        flag: &key,
        env: &env,
        expected_from: None,
        to: args.on,
        reason,
        via: Via::Cli,
    };
    // A code elevates this one flip, audited and locked after repeated failures as
    // from every door; it is spent only if the flag needs it and the role may flip
    // it.
    let code = args.totp.as_deref().and_then(TotpCode::new);
    let flipped = app
        .flip(&actor, &flip, config::step_up(code.as_ref()))
        .await?;
    let state = |on: bool| if on { "on" } else { "off" };
    output::line(format_args!(
        "{} in {}: {} -> {} (audit row {}, by {})",
        args.key,
        args.env,
        state(flipped.from),
        state(flipped.to),
        flipped.audit_id,
        actor.name()
    ))?;
    Ok(Outcome::Success)
}
