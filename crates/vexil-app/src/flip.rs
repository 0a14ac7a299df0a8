//! `App::flip`: change one flag in one env, with its audit row, or change nothing and
//! say why. It reads straight down (ARCHITECTURE.md, invariant 7).
//!
//! The sequence: unknown flag or env, `authorize`, begin, read the row, the value in
//! force before (the row, else the env's variables, else the default), a conflict on a
//! stale `expected_from` (naming the current value, who and when) or no change, write
//! the row and its `console.flag.flip` row, commit, then refresh this process's view.
//! Optimistic: if the row changed after the read, the write does nothing and the flip
//! starts again from a fresh read, up to `MAX_ATTEMPTS`, then reports a conflict; so
//! racing flips change a flag once and the losers are told why. When the env's live
//! instances disagree about the flag's variable and no row decides, the value before is
//! a guess: the flip is neither a conflict nor "already so", and its audit row carries
//! the `drift` counts.

use serde_json::json;
use vexil_core::audit::{FLAG_FLIP, FlipPayload, TARGET_FEATURE_FLAG, Via};
use vexil_core::{Action, Env, EnvSnapshot, FlagDecl, MasterSwitch, authorize, resolve};
use vexil_store::{Expected, NewAudit};

use crate::app::{Actor, App, EnvLayer};
use crate::error::AppError;

/// A flip as asked for.
#[derive(Debug, Clone)]
pub struct Flip<'a> {
    pub flag_key: &'a str,
    pub env: &'a str,
    /// The value the operator saw. `None` (the break-glass CLI) flips whatever is in
    /// force; `Some` refuses to flip a value that changed since it was read.
    pub expected_from: Option<bool>,
    pub to: bool,
    /// Whether the caller holds a valid TOTP elevation (a session elevated in the
    /// console, or a code checked for this request).
    pub elevated: bool,
    pub reason: Option<&'a str>,
    pub via: Via,
}

/// What a successful flip did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flipped {
    pub from: bool,
    pub to: bool,
    pub audit_id: i64,
}

/// How many times a flip re-reads after losing a race before it reports a conflict.
/// One retry settles any race between vexil's writers (the loser then sees the
/// winner's value); more would only matter against a script hammering the row.
const MAX_ATTEMPTS: u32 = 3;

impl App {
    pub async fn flip(&self, actor: &Actor, flip: &Flip<'_>) -> Result<Flipped, AppError> {
        self.flip_marked(actor, flip, false).await
    }

    /// [`App::flip`]; `reconcile` marks the audit row as a reconciling flip
    /// (`App::reconcile`).
    pub(crate) async fn flip_marked(
        &self,
        actor: &Actor,
        flip: &Flip<'_>,
        reconcile: bool,
    ) -> Result<Flipped, AppError> {
        let flags = self.flags.load();
        let decl = flags
            .get(flip.flag_key)
            .ok_or_else(|| AppError::UnknownFlag {
                key: flip.flag_key.to_owned(),
            })?;
        let env = self.envs.parse(flip.env)?;
        authorize(actor.role, Action::Flip(decl.risk()), flip.elevated)?;

        // Optimistic: read, decide, write only if the row is still the one read. A
        // concurrent writer (another flip, or direct SQL, which takes no lock of ours)
        // makes the write a no-op, and the flip starts again from a fresh read, so
        // that what it then refuses or does is judged against the newer value.
        //
        // The env layer counts only where no row decides, and reading it (the live
        // processes' reports) costs a query: it is read then only.
        let mut layer: Option<EnvLayer<'_>> = None;
        let no_layer = EnvSnapshot::default();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut tx = self.db.begin_write().await?;
            let row = tx.flag_row(decl.key().as_str(), env.as_str()).await?;
            if row.is_none() && layer.is_none() {
                layer = Some(self.env_layer_in(&mut tx, &env).await?);
            }
            let env_vars = match (&row, &layer) {
                (None, Some(layer)) => &*layer.snapshot,
                _ => &no_layer,
            };
            // The value in force before the flip: the row if there is one (a flip
            // writes the DB layer, whatever the master switch), else the env layer,
            // else the YAML.
            let before = resolve(
                decl,
                row.as_ref().map(|r| r.value),
                env_vars,
                MasterSwitch::On,
            );
            // The processes of this env disagree about the flag's variable and no row
            // decides: the value before is not known, only guessed. Neither a
            // conflict nor "already so" can be judged against a guess; the flip goes
            // ahead (its row makes them all agree) and its audit row says so.
            let drift = match (&row, &layer) {
                (None, Some(layer)) => layer
                    .drift
                    .iter()
                    .find(|d| d.key == decl.key().as_str())
                    .map(|d| &d.states),
                _ => None,
            };
            if let Some(expected) = flip.expected_from
                && expected != before.value
                && drift.is_none()
            {
                metrics::counter!("vexil_flip_conflicts_total", "env" => env.to_string(), "via" => flip.via.as_str())
                    .increment(1);
                return Err(AppError::Conflict {
                    flag: decl.key().to_string(),
                    env: env.to_string(),
                    expected,
                    current: before.value,
                    current_source: before.source,
                    updated_by: row.as_ref().and_then(|r| r.updated_by.clone()),
                    updated_at: row.as_ref().map(|r| r.updated_at),
                });
            }
            if before.value == flip.to && drift.is_none() {
                return Err(AppError::NoChange {
                    flag: decl.key().to_string(),
                    env: env.to_string(),
                    value: flip.to,
                });
            }

            let payload = FlipPayload {
                flag: decl.key(),
                env: &env,
                from: before.value,
                to: flip.to,
                via: flip.via,
                reason: flip.reason,
                drift,
                promotion_id: None,
                reconcile,
            };
            let audit = NewAudit {
                created_at: self.clock.now(),
                admin_id: Some(actor.id),
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
                    &actor.name,
                    Expected::of(row.as_ref()),
                    &audit,
                )
                .await?;
            match written {
                Some(audit_id) => {
                    tx.commit().await?;
                    self.flipped(decl, &env, flip.via).await;
                    return Ok(Flipped {
                        from: before.value,
                        to: flip.to,
                        audit_id,
                    });
                }
                // Dropping `tx` rolls back the audit row written for nothing.
                None if attempts < MAX_ATTEMPTS => continue,
                // The row keeps changing under us: say so rather than spin.
                None => {
                    // A new statement sees the newest committed row (PostgreSQL's read
                    // committed; SQLite's write lock means this never happens there).
                    let now = tx.flag_row(decl.key().as_str(), env.as_str()).await?;
                    // Without a row, the variables as last read (or none known).
                    let env_vars = layer.as_ref().map_or(&no_layer, |l| &*l.snapshot);
                    let current = resolve(
                        decl,
                        now.as_ref().map(|r| r.value),
                        env_vars,
                        MasterSwitch::On,
                    );
                    metrics::counter!("vexil_flip_conflicts_total", "env" => env.to_string(), "via" => flip.via.as_str())
                    .increment(1);
                    return Err(AppError::Conflict {
                        flag: decl.key().to_string(),
                        env: env.to_string(),
                        expected: before.value,
                        current: current.value,
                        current_source: current.source,
                        updated_by: now.as_ref().and_then(|r| r.updated_by.clone()),
                        updated_at: now.as_ref().map(|r| r.updated_at),
                    });
                }
            }
        }
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
        if let Some(view) = self.view.as_ref().filter(|v| v.env() == env.as_str())
            && let Err(error) = view.invalidate(decl.key().as_str()).await
        {
            tracing::warn!(%error, "could not refresh this process's view after a flip");
        }
    }
}
