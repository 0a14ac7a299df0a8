//! `App::flip`: change one flag in one env, with its audit row, or change nothing and
//! say why. `App::flip` reads straight down (ARCHITECTURE.md, invariant 7): the
//! flag (a role that may not see the flags learns nothing), `authorize` (the role for
//! its risk, then elevation where it needs it), then `write_flip`.
//!
//! `write_flip`: begin, read the row, the value in force before (the row, else the
//! env's variables, else the default), a conflict on a stale `expected_from` (naming
//! the current value, who and when) or no change, write the row and its
//! `console.flag.flip` row, commit, then tell this process's view and caches.
//! Optimistic: if the row changed after the read, the write does nothing and the flip
//! starts again from a fresh read, up to `MAX_ATTEMPTS`, then reports a conflict; so
//! racing flips change a flag once and the losers are told why. When the env's live
//! instances disagree about the flag's variable and no row decides, the value before is
//! a guess: the flip is neither a conflict nor "already so", and its audit row carries
//! the `drift` counts.

use std::collections::BTreeMap;

use serde_json::json;
use vexil_core::audit::{FLAG_FLIP, FlipPayload, TARGET_FEATURE_FLAG, Via};
use vexil_core::{
    Action, Clearance, Env, EnvSnapshot, FlagDecl, FlagKey, MasterSwitch, Source, VarState,
    check_role, resolve,
};
use vexil_store::{Expected, FlagRow, NewAudit};

use crate::app::{Actor, App, EnvLayer};
use crate::elevation::{Elevation, StepUp};
use crate::error::AppError;

/// A flip as asked for, its key and env already parsed by the door.
#[derive(Debug, Clone)]
pub struct Flip<'a> {
    pub flag: &'a FlagKey,
    pub env: &'a Env,
    /// The value the operator saw. `None` (the break-glass CLI) flips whatever is in
    /// force; `Some` refuses to flip a value that changed since it was read.
    pub expected_from: Option<bool>,
    pub to: bool,
    /// Checked by `vexil_core::audit::reason` at the door (which then refuses before
    /// a code is read), and again by `App::flip`, so that no door can write one that
    /// breaks the database or the audit page.
    pub reason: Option<&'a str>,
    pub via: Via,
}

/// What a successful flip did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flipped {
    pub from: bool,
    pub to: bool,
    pub audit_id: i64,
    /// The elevation a code sent with the flip made, for a console session to keep.
    pub elevation: Option<Elevation>,
}

/// The flag key a door was given. A text that is not a key's shape cannot be
/// declared, so it is an unknown flag like any other (one answer for both).
pub fn parse_flag_key(text: &str) -> Result<FlagKey, AppError> {
    FlagKey::parse(text).map_err(|_| AppError::UnknownFlag {
        key: text.to_owned(),
    })
}

/// How many times a flip re-reads after losing a race before it reports a conflict.
/// One retry settles any race between vexil's writers (the loser then sees the
/// winner's value); more would only matter against a script hammering the row.
const MAX_ATTEMPTS: u32 = 3;

/// Whether a flip is a reconciling one (`App::reconcile`), which its audit row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlipKind {
    Plain,
    Reconcile,
}

/// The value in force before a flip, as read in its transaction.
struct Before<'l> {
    value: bool,
    source: Source,
    /// The env's processes disagree about the flag's variable and no row decides:
    /// the value before is a guess (how many processes report each state).
    drift: Option<&'l BTreeMap<VarState, usize>>,
}

impl App {
    /// Flips one flag in one env, audited in the same transaction, or changes nothing
    /// and says why. The whole sequence, for every door: a role that may not see the
    /// flags learns nothing of the flag; then the flag, the role for its risk, and
    /// elevation where the flag needs it (a code is spent only then); then the write.
    pub async fn flip(
        &self,
        actor: &Actor,
        flip: &Flip<'_>,
        step_up: StepUp<'_>,
    ) -> Result<Flipped, AppError> {
        vexil_core::audit::reason(flip.reason)?;
        let decl = self.visible_flag(actor, flip.flag)?;
        let action = Action::Flip(decl.risk());
        // A code is not spent on a flip that would be refused as things stand.
        if matches!(step_up, StepUp::Code { .. })
            && check_role(actor.role(), action) == Ok(Clearance::NeedsElevation)
        {
            self.flip_preflight(&decl, flip).await?;
        }
        let elevation = self.authorize(actor, action, step_up).await?;
        let flipped = self.write_flip(actor, &decl, flip, FlipKind::Plain).await?;
        Ok(Flipped {
            elevation,
            ..flipped
        })
    }

    /// A flip that would be refused as last read (a stale `expected_from`, or the
    /// value already in force); the write judges again under its transaction.
    async fn flip_preflight(&self, decl: &FlagDecl, flip: &Flip<'_>) -> Result<(), AppError> {
        let row = self
            .db
            .flag_row(decl.key().as_str(), flip.env.as_str())
            .await?;
        let layer = match row {
            Some(_) => None,
            None => Some(self.env_layer(flip.env).await?),
        };
        let before = before(decl, row.as_ref(), layer.as_ref());
        refuse_stale(decl, flip, &before, row.as_ref())
    }

    /// The declaration of `key`, for an actor whose role may see the flags.
    pub(crate) fn visible_flag(&self, actor: &Actor, key: &FlagKey) -> Result<FlagDecl, AppError> {
        actor.may(Action::ViewFlags)?;
        self.flags
            .load()
            .get(key.as_str())
            .cloned()
            .ok_or_else(|| AppError::UnknownFlag {
                key: key.to_string(),
            })
    }

    /// The write of an authorized flip: read, decide, write only if the row is still
    /// the one read. A concurrent writer (another flip, or direct SQL, which takes no
    /// lock of ours) makes the write a no-op, and the flip starts again from a fresh
    /// read, so that what it then refuses or does is judged against the newer value.
    pub(crate) async fn write_flip(
        &self,
        actor: &Actor,
        decl: &FlagDecl,
        flip: &Flip<'_>,
        kind: FlipKind,
    ) -> Result<Flipped, AppError> {
        let env = flip.env;
        // The env layer counts only where no row decides, and reading it (the live
        // processes' reports) costs a query: it is read then only.
        let mut layer: Option<EnvLayer<'_>> = None;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut tx = self.db.begin_write().await?;
            let row = tx.flag_row(decl.key().as_str(), env.as_str()).await?;
            if row.is_none() && layer.is_none() {
                layer = Some(self.env_layer_in(&mut tx, env).await?);
            }
            let before = before(decl, row.as_ref(), layer.as_ref());
            refuse_stale(decl, flip, &before, row.as_ref())?;
            let payload = FlipPayload {
                flag: decl.key(),
                env,
                from: before.value,
                to: flip.to,
                via: flip.via,
                reason: flip.reason,
                drift: before.drift,
                promotion_id: None,
                reconcile: kind == FlipKind::Reconcile,
            };
            let audit = NewAudit {
                created_at: self.clock.now(),
                admin_id: Some(actor.id()),
                action: FLAG_FLIP,
                target_type: TARGET_FEATURE_FLAG,
                target_id: decl.key().to_string(),
                payload: json!(payload),
            };
            let written = tx
                .write_flag(
                    decl.key().as_str(),
                    env.as_str(),
                    flip.to,
                    actor.name(),
                    Expected::of(row.as_ref()),
                    &audit,
                )
                .await?;
            match written {
                Some(audit_id) => {
                    tx.commit().await?;
                    self.flipped(decl, env, flip.via).await;
                    return Ok(Flipped {
                        from: before.value,
                        to: flip.to,
                        audit_id,
                        elevation: None,
                    });
                }
                // Dropping `tx` rolls back the audit row written for nothing.
                None if attempts < MAX_ATTEMPTS => continue,
                // The row keeps changing under us: say so rather than spin. A new
                // statement sees the newest committed row (PostgreSQL's read
                // committed; SQLite's write lock means this never happens there).
                None => {
                    let now = tx.flag_row(decl.key().as_str(), env.as_str()).await?;
                    let current = before_of(decl, now.as_ref(), layer.as_ref());
                    return Err(conflict(decl, flip, before.value, &current, now.as_ref()));
                }
            }
        }
    }
}

/// The value in force before the flip: the row if there is one (a flip writes the DB
/// layer, whatever the master switch), else the env layer, else the YAML; and the
/// drift that makes it a guess.
fn before<'l>(
    decl: &FlagDecl,
    row: Option<&FlagRow>,
    layer: Option<&'l EnvLayer<'_>>,
) -> Before<'l> {
    let mut value = before_of(decl, row, layer);
    value.drift = match (row, layer) {
        (None, Some(layer)) => layer
            .drift
            .iter()
            .find(|d| d.key == decl.key().as_str())
            .map(|d| &d.states),
        _ => None,
    };
    value
}

/// [`before`] without the drift.
fn before_of<'l>(
    decl: &FlagDecl,
    row: Option<&FlagRow>,
    layer: Option<&EnvLayer<'_>>,
) -> Before<'l> {
    let none = EnvSnapshot::default();
    let env_vars = match (row, layer) {
        (None, Some(layer)) => &*layer.snapshot,
        _ => &none,
    };
    let resolved = resolve(decl, row.map(|r| r.value), env_vars, MasterSwitch::On);
    Before {
        value: resolved.value,
        source: resolved.source,
        drift: None,
    }
}

/// A flip from a value no longer in force, or to the value already in force, is
/// refused. Neither can be judged against a guess (drift): the flip then goes ahead
/// (its row makes the processes agree) and its audit row says so.
fn refuse_stale(
    decl: &FlagDecl,
    flip: &Flip<'_>,
    before: &Before<'_>,
    row: Option<&FlagRow>,
) -> Result<(), AppError> {
    if before.drift.is_some() {
        return Ok(());
    }
    if let Some(expected) = flip.expected_from
        && expected != before.value
    {
        return Err(conflict(decl, flip, expected, before, row));
    }
    if before.value == flip.to {
        return Err(AppError::NoChange {
            flag: decl.key().to_string(),
            env: flip.env.to_string(),
            value: flip.to,
        });
    }
    Ok(())
}

/// The refusal of a flip from `expected` when `current` is in force, counted.
fn conflict(
    decl: &FlagDecl,
    flip: &Flip<'_>,
    expected: bool,
    current: &Before<'_>,
    row: Option<&FlagRow>,
) -> AppError {
    metrics::counter!("vexil_flip_conflicts_total", "env" => flip.env.to_string(), "via" => flip.via.as_str())
        .increment(1);
    AppError::Conflict {
        flag: decl.key().to_string(),
        env: flip.env.to_string(),
        expected,
        current: current.value,
        current_source: current.source,
        updated_by: row.and_then(|r| r.updated_by.clone()),
        updated_at: row.map(|r| r.updated_at),
    }
}

impl App {
    /// After a committed flip (or a promotion's prod write): count it, and read it
    /// into this process's view when the view is of that env. The flip is done
    /// whatever happens here: a view that cannot read it now gets it from the feed or
    /// the TTL.
    pub(crate) async fn flipped(&self, decl: &FlagDecl, env: &Env, via: Via) {
        metrics::counter!(
            "vexil_flips_total",
            "env" => env.to_string(),
            "risk" => decl.risk().as_str(),
            "via" => via.as_str(),
        )
        .increment(1);
        if let Some(listener) = self.on_change.get() {
            listener();
        }
        if let Some(view) = self.view.as_ref().filter(|v| v.env() == env.as_str())
            && let Err(error) = view.invalidate(decl.key().as_str()).await
        {
            tracing::warn!(%error, "could not refresh this process's view after a flip");
        }
    }
}
