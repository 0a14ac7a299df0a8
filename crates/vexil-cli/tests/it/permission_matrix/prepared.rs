//! The permission table's promotion rows (and client-key revocations, which each get
//! a live key of their own): before each such cell, the world is put in
//! the state the row acts on (through the use cases, as root), so that every cell,
//! allowed or refused, meets the same starting point: the flag on in staging and off
//! in prod, no other open promotion, and for a step the promotion it moves.

use vexil_app::{Actor, Flip, StepUp};
use vexil_core::audit::Via;
use vexil_core::promotion::{PromotionState, confirmation_phrase};
use vexil_core::{Env, FlagKey, Risk as FlagRisk};

use super::callers::World;
use super::cells::Cell;

/// What a promotion row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Mark,
    Read,
    Approve,
    Promote,
    Reject,
}

impl Step {
    /// The promotion step a row asks for, or `None` for a row about something else.
    pub(crate) fn of(what: &str) -> Option<Step> {
        if !what.contains("promotion") {
            return None;
        }
        Some(
            if what.starts_with("GET ") || what.ends_with(" list") || what.ends_with(" show") {
                Step::Read
            } else if what.ends_with("/promotions") || what.ends_with(" mark") {
                Step::Mark
            } else if what.ends_with("approve") {
                Step::Approve
            } else if what.ends_with("promote") {
                Step::Promote
            } else {
                Step::Reject
            },
        )
    }
}

impl World {
    /// Sets the world up for `cell` if it is a promotion row; returns the promotion
    /// its request names (none for a mark, which names the flag).
    pub(crate) async fn prepare(&self, cell: &Cell, flag: &str) -> Option<i64> {
        // A revocation needs a live key of its own.
        if cell.what.ends_with("/client-keys/{id}/revoke") || cell.what == "vexil client-key revoke"
        {
            return Some(World::new_client_key(&self.app).await.0);
        }
        let step = Step::of(cell.what)?;
        let app = &self.app;
        let root = app.actor("root").await.unwrap();
        for open in [PromotionState::Pending, PromotionState::Approved] {
            for p in app.promotions(Some(open), Some(flag), 10).await.unwrap() {
                // A promotion whose prod or staging row changed since (a flip row of
                // the table) is expired by the attempt instead: closed either way.
                match app
                    .reject(&root, p.id, "reset for the next cell", Via::Cli)
                    .await
                {
                    Ok(_) | Err(vexil_app::AppError::Promotion { .. }) => {}
                    Err(other) => panic!("cannot reset promotion {}: {other}", p.id),
                }
            }
        }
        self.set(&root, flag, &Env::STAGING, true).await;
        self.set(&root, flag, &Env::PROD, false).await;
        if step == Step::Mark {
            return None;
        }
        let id = app
            .mark_promote(&root, &FlagKey::parse(flag).unwrap(), Via::Cli)
            .await
            .unwrap()
            .record
            .id;
        if cell.what.starts_with("vexil ") {
            // The binary reads the real clock, which the world's test clock has run
            // ahead of (each TOTP code moves it a step): the soak ended a minute ago
            // by the real clock, as direct SQL would set it.
            let ended = (chrono::Utc::now() - chrono::TimeDelta::minutes(1))
                .format("%Y-%m-%d %H:%M:%S%.3f");
            self.execute(&format!(
                "UPDATE console_promotions SET soak_ends_at = '{ended}' WHERE id = {id}"
            ))
            .await;
        }
        if step == Step::Promote {
            app.approve(&root, id, Via::Cli).await.unwrap();
        }
        Some(id)
    }

    /// An elevation of `root` with its next unused code.
    async fn elevate(&self, root: &Actor) -> vexil_app::Elevation {
        let code = vexil_app::TotpCode::new(&self.next_root_code()).unwrap();
        self.app.elevate(root, &code, "test").await.unwrap()
    }

    async fn set(&self, root: &Actor, flag: &str, env: &Env, to: bool) {
        let states = self.app.flag_states(Some(env)).await.unwrap();
        let now = states.states.iter().find(|s| s.key == flag).unwrap();
        // The use cases judge by the row when there is one, whatever the switch.
        if now.row_value.unwrap_or(now.value) == to {
            return;
        }
        let flip = Flip {
            flag: &FlagKey::parse(flag).unwrap(),
            env,
            expected_from: None,
            to,
            reason: Some("set up a permission cell"),
            via: Via::Cli,
        };
        // A high-risk flag needs an elevation, made as every door makes one.
        let elevation = match self.app.flags().get(flag).map(vexil_core::FlagDecl::risk) {
            Some(FlagRisk::High) => Some(self.elevate(root).await),
            _ => None,
        };
        let step_up = elevation.as_ref().map_or(StepUp::None, StepUp::Held);
        self.app.flip(root, &flip, step_up).await.unwrap();
    }
}

/// The typed confirmation a promote of `flag` sends: the phrase for a high-risk flag.
pub(crate) fn confirmation(risk: FlagRisk, flag: &str) -> Option<String> {
    (risk == FlagRisk::High).then(|| confirmation_phrase(flag))
}
