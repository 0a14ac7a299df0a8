//! `vexil promotion mark|list|show|approve|promote|reject`: staging → prod promotion
//! (docs/promotion.md) from a shell with database access. Every step goes through the
//! same use case and role matrix as the console and the API and is audited with
//! `"via": "cli"`; `--json` prints the API's `PromotionView` (a step: the API's
//! `{audit_id, flip_audit_id?, promotion}`), so scripts read one shape everywhere.
//!
//! A promote checks `App::promote_preflight`, then `--totp CODE`, so a mistyped phrase
//! spends no code. Only these commands and `serve` read `VEXIL_PROMOTION_*`, so a
//! mistyped setting never blocks the break-glass ones.

use anyhow::bail;
use chrono::{DateTime, Utc};
use vexil_app::{App, AppError, PromoteRequest, Stepped, TotpCode, parse_flag_key};
use vexil_core::audit::Via;
use vexil_core::message::one_line;
use vexil_core::promotion::{PromotionState, time_left};
use vexil_server::{PromotionView, StepResponse};

use crate::cli::{GlobalArgs, PromoteArgs, PromotionCommand};
use crate::{Outcome, config, output};

/// The app, with this deployment's promotion rules (`VEXIL_PROMOTION_*`): read by
/// the promotion commands and `serve` only, so that a mistyped setting never stands
/// in the way of the break-glass commands.
async fn app(global: &GlobalArgs, needs: config::Needs) -> anyhow::Result<App> {
    let app = config::app(global, needs).await?;
    Ok(app.with_promotion_windows(config::promotion_windows()?))
}

/// The most promotions one listing prints (the API's limit too).
const MAX_LIMIT: u32 = 500;

pub(crate) async fn run(global: &GlobalArgs, command: PromotionCommand) -> anyhow::Result<Outcome> {
    match command {
        PromotionCommand::Mark { key, actor, json } => {
            let app = app(global, config::Needs::Flags).await?;
            let actor = app.actor(&actor).await?;
            let stepped = app
                .mark_promote(&actor, &parse_flag_key(&key)?, Via::Cli)
                .await?;
            let soak_ends_at = utc(stepped.record.promotion.soak_ends_at);
            let done = format!("marked active for prod by {}", actor.name());
            let after = format!("; its soak ends at {soak_ends_at}, approve it after that");
            step(&app, &stepped, json.json, &done, &after)
        }
        PromotionCommand::List {
            state,
            flag,
            limit,
            json,
        } => list(global, state.as_deref(), flag.as_deref(), limit, json.json).await,
        PromotionCommand::Show { id, json } => show(global, id, json.json).await,
        PromotionCommand::Approve { id, actor, json } => {
            let app = app(global, config::Needs::Flags).await?;
            let actor = app.actor(&actor).await?;
            let stepped = app.approve(&actor, id, Via::Cli).await?;
            let done = format!("approved by {}", actor.name());
            step(&app, &stepped, json.json, &done, "")
        }
        PromotionCommand::Promote(args) => promote(global, &args).await,
        PromotionCommand::Reject {
            id,
            actor,
            reason,
            json,
        } => {
            let app = app(global, config::Needs::Flags).await?;
            let actor = app.actor(&actor).await?;
            let stepped = app.reject(&actor, id, &reason, Via::Cli).await?;
            let done = format!("rejected by {}", actor.name());
            step(&app, &stepped, json.json, &done, "")
        }
    }
}

/// Promotes: role, then the typed phrase, then the TOTP code, then the use case.
async fn promote(global: &GlobalArgs, args: &PromoteArgs) -> anyhow::Result<Outcome> {
    // The secret key is read only when a code is given, as `vexil flip` does: a
    // promote that needs no code must not fail on a key file it does not use.
    let needs = if args.totp.is_some() {
        config::Needs::FlagsAndKey
    } else {
        config::Needs::Flags
    };
    let app = app(global, needs).await?;
    let actor = app.actor(&args.actor).await?;
    let code = args.totp.as_deref().and_then(TotpCode::new);
    let request = PromoteRequest {
        confirmation: args.confirm.as_deref(),
        via: Via::Cli,
    };
    // `App::promote` checks role, phrase and state before it looks at the code: a
    // mistyped phrase or a promotion not yet approved spends no code (each is
    // accepted once, so the operator would wait for the next one), and a promote
    // that needs no elevation leaves the code unspent.
    let step_up = config::step_up(code.as_ref());
    let stepped = app.promote(&actor, args.id, &request, step_up).await?;
    let done = format!("promoted by {}, now on in prod", actor.name());
    step(&app, &stepped, args.json.json, &done, "")
}

/// Promotions newest first, as a table or a JSON array.
async fn list(
    global: &GlobalArgs,
    state: Option<&str>,
    flag: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<Outcome> {
    // Checked before the database is opened: bad input is said at once.
    let state = state.map(parse_state).transpose()?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        bail!("--limit {limit}: expected 1 to {MAX_LIMIT}");
    }
    let app = app(global, config::Needs::Flags).await?;
    // A misspelt key would list nothing and look like "no promotions": say so instead.
    if let Some(key) = flag
        && app.flags().get(key).is_none()
    {
        return Err(AppError::UnknownFlag {
            key: key.to_owned(),
        }
        .into());
    }
    let now = app.now();
    let views: Vec<PromotionView> = app
        .promotions(state, flag, limit)
        .await?
        .iter()
        .map(|record| PromotionView::new(&app, record, now))
        .collect();
    if json {
        output::json(&views)?;
        return Ok(Outcome::Success);
    }
    if views.is_empty() {
        output::line("no promotions")?;
        return Ok(Outcome::Success);
    }
    let mut table = output::table([
        "id",
        "flag",
        "state",
        "marked by",
        "soak ends (UTC)",
        "approved by",
        "reason",
    ]);
    for view in &views {
        let mut soak = view.soak_ends_at.format("%Y-%m-%d %H:%M").to_string();
        // Time left matters only while the promotion waits for its soak.
        if view.state == PromotionState::Pending.as_str() && view.soak_remaining_seconds > 0 {
            soak = format!("{soak} ({})", remaining(view.soak_remaining_seconds));
        }
        table.add_row([
            view.id.to_string(),
            one_line(&view.flag),
            view.state.to_owned(),
            one_line(&view.marked_by),
            soak,
            view.approved_by.as_deref().map_or("-".to_owned(), one_line),
            view.reason.as_deref().map_or("-".to_owned(), one_line),
        ]);
    }
    output::line(table)?;
    Ok(Outcome::Success)
}

/// One promotion as `key: value` lines (the JSON's names), or its `PromotionView`.
async fn show(global: &GlobalArgs, id: i64, json: bool) -> anyhow::Result<Outcome> {
    let app = app(global, config::Needs::Flags).await?;
    let record = app.promotion(id).await?;
    let view = PromotionView::new(&app, &record, app.now());
    if json {
        output::json(&view)?;
        return Ok(Outcome::Success);
    }
    let soak = if view.state == PromotionState::Pending.as_str() && view.soak_remaining_seconds > 0
    {
        format!(
            "{} ({})",
            utc(view.soak_ends_at),
            remaining(view.soak_remaining_seconds)
        )
    } else {
        utc(view.soak_ends_at)
    };
    let mut lines = vec![
        ("id", view.id.to_string()),
        ("flag", one_line(&view.flag)),
        (
            "risk",
            view.risk
                .unwrap_or("- (not declared in the flags file)")
                .to_owned(),
        ),
        ("state", view.state.to_owned()),
        ("marked_by", one_line(&view.marked_by)),
        ("marked_at", utc(view.marked_at)),
        ("soak_ends_at", soak),
    ];
    let optional = [
        ("approved_by", view.approved_by.as_deref().map(one_line)),
        ("approved_at", view.approved_at.map(utc)),
        ("ended_at", view.ended_at.map(utc)),
        ("reason", view.reason.as_deref().map(one_line)),
        ("expires_at", view.expires_at.map(utc)),
        ("confirmation_phrase", view.confirmation_phrase.clone()),
    ];
    lines.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v))),
    );
    let text: Vec<String> = lines
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    output::line(text.join("\n"))?;
    Ok(Outcome::Success)
}

/// Prints a step as `promotion ID of FLAG: DONE (audit row N)AFTER` (a promote also
/// names its prod flip's row), or as JSON.
fn step(
    app: &App,
    stepped: &Stepped,
    json: bool,
    done: &str,
    after: &str,
) -> anyhow::Result<Outcome> {
    if json {
        output::json(&StepResponse::new(app, stepped))?;
    } else {
        let flip = stepped
            .flip_audit_id
            .map(|id| format!("; the prod flip: audit row {id}"))
            .unwrap_or_default();
        output::line(format_args!(
            "promotion {} of {}: {done} (audit row {}{flip}){after}",
            stepped.record.id, stepped.record.flag_key, stepped.audit_id
        ))?;
    }
    Ok(Outcome::Success)
}

fn parse_state(text: &str) -> anyhow::Result<PromotionState> {
    PromotionState::parse(text).ok_or_else(|| {
        let names: Vec<&str> = PromotionState::ALL.iter().map(|s| s.as_str()).collect();
        anyhow::anyhow!(
            "unknown promotion state '{}' (expected one of: {})",
            one_line(text),
            names.join(", ")
        )
    })
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `3 h 12 min left`: the soak still to run, from whole seconds.
fn remaining(seconds: i64) -> String {
    format!("{} left", time_left(chrono::TimeDelta::seconds(seconds)))
}
