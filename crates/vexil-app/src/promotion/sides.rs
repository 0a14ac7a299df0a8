//! What a promotion's step judges besides the promotion itself: the flag's staging
//! and prod rows, the values in force there, and what changed since it was marked.

use vexil_core::promotion::{Changes, Promotion};
use vexil_core::{Env, EnvSnapshot, FlagDecl, MasterSwitch, resolve};
use vexil_store::{FlagRow, PromotionRow, WriteTx};

use super::read;
use crate::app::App;
use crate::error::AppError;

/// The flag's two rows and the values in force, as one transaction reads them.
pub(super) struct Sides {
    pub(super) staging: Option<FlagRow>,
    pub(super) prod: Option<FlagRow>,
    pub(super) staging_on: Option<bool>,
    pub(super) prod_on: Option<bool>,
}

impl App {
    /// Promotion `id`, locked in `tx`, with its flag's sides as `tx` reads them.
    pub(super) async fn read_locked(
        &self,
        tx: &mut WriteTx,
        id: i64,
    ) -> Result<(PromotionRow, Promotion, Sides), AppError> {
        let (row, current) = read(tx, id).await?;
        let flags = self.flags.load();
        let sides = self
            .sides(tx, &row.flag_key, flags.get(&row.flag_key))
            .await?;
        Ok((row, current, sides))
    }

    /// The flag's rows in staging and prod and the values in force there (a row if
    /// there is one, whatever the master switch, as a flip judges "before"; else the
    /// env's variables; else the default), read inside `tx`.
    pub(super) async fn sides(
        &self,
        tx: &mut WriteTx,
        key: &str,
        decl: Option<&FlagDecl>,
    ) -> Result<Sides, AppError> {
        let staging = tx.flag_row(key, Env::STAGING.as_str()).await?;
        let prod = tx.flag_row(key, Env::PROD.as_str()).await?;
        // The variables count only where no row decides, and cost a query: read then.
        let mut vars = [None, None];
        for (slot, (row, env)) in vars
            .iter_mut()
            .zip([(&staging, &Env::STAGING), (&prod, &Env::PROD)])
        {
            if row.is_none() && decl.is_some() {
                *slot = Some(self.env_layer_in(tx, env).await?.snapshot.into_owned());
            }
        }
        let [staging_vars, prod_vars] = vars;
        Ok(sides_from(
            decl,
            (staging, staging_vars.as_ref()),
            (prod, prod_vars.as_ref()),
        ))
    }
}

/// The flag's two rows and the values in force there: a row if there is one, else the
/// env's variables (none known: the default). Values are unknown without a
/// declaration.
pub(super) fn sides_from(
    decl: Option<&FlagDecl>,
    (staging, staging_vars): (Option<FlagRow>, Option<&EnvSnapshot>),
    (prod, prod_vars): (Option<FlagRow>, Option<&EnvSnapshot>),
) -> Sides {
    let none = EnvSnapshot::default();
    let value = |row: &Option<FlagRow>, vars: Option<&EnvSnapshot>| {
        decl.map(|decl| match row {
            Some(row) => row.value,
            None => resolve(decl, None, vars.unwrap_or(&none), MasterSwitch::On).value,
        })
    };
    Sides {
        staging_on: value(&staging, staging_vars),
        prod_on: value(&prod, prod_vars),
        staging,
        prod,
    }
}

/// What changed since the promotion was marked: a row written again (by vexil or by
/// SQL: either gives it a new `audit_id`), or a value that no longer holds.
pub(super) fn changes(row: &PromotionRow, sides: &Sides) -> Changes {
    let audit_id = |row: &Option<FlagRow>| row.as_ref().and_then(|r| r.audit_id);
    Changes {
        staging_changed: audit_id(&sides.staging) != row.staging_audit_id
            || sides.staging_on == Some(false),
        prod_changed: audit_id(&sides.prod) != row.prod_audit_id || sides.prod_on == Some(true),
    }
}
