//! The old console's admins on an adopted database (docs/adopt.md): mapping an old
//! admin id to the vexil account of the same person (`vexil user map-admin`), after
//! which the rows written under that id show the account, still marked as the old
//! console's.
//!
//! An id the old console has not written under yet gets its placeholder here first
//! (`console.user.old_admin`), so that the old console, running beside vexil, can
//! write under it. Only ids below vexil's first account are old ones: a vexil
//! account is never mistaken for an old admin, nor the reverse.

use serde_json::json;
use vexil_core::audit::{USER_MAP_ADMIN, USER_OLD_ADMIN};
use vexil_core::old_admin::placeholder_name;
use vexil_store::OldAdminRow;

use crate::account::Admin;
use crate::app::App;
use crate::error::AppError;

impl App {
    /// Maps old console admin `admin_id` to the account `name`, audited
    /// (`console.user.map_admin`, with the account it was mapped to before, if any).
    pub async fn map_old_admin(
        &self,
        admin: Admin<'_>,
        admin_id: i64,
        name: &str,
    ) -> Result<(), AppError> {
        App::authorize_admin(admin)?;
        let adoption = self.db.adoption().await?.ok_or(AppError::NotAdopted)?;
        if !(1..adoption.accounts_from).contains(&admin_id) {
            return Err(AppError::NotAnOldAdmin {
                id: admin_id,
                accounts_from: adoption.accounts_from,
            });
        }
        let account = self.existing_user(name).await?;
        if account.id < adoption.accounts_from {
            return Err(AppError::OldAdminAccount {
                name: account.name,
                id: account.id,
            });
        }
        let old = self.db.old_admin(admin_id).await?;
        let before = old.as_ref().and_then(|old| old.account.clone());
        if let Some((id, mapped)) = &before
            && *id == account.id
        {
            return Err(AppError::AlreadyMapped {
                id: admin_id,
                name: mapped.clone(),
            });
        }
        let mut tx = self.db.begin_write().await?;
        if old.is_none() {
            let placeholder = placeholder_name(admin_id);
            let audit = self.user_audit(
                admin,
                USER_OLD_ADMIN,
                &placeholder,
                json!({"name": placeholder, "admin_id": admin_id}),
            );
            tx.add_old_admin(admin_id, self.clock.now(), &audit).await?;
        }
        let audit = self.user_audit(
            admin,
            USER_MAP_ADMIN,
            name,
            json!({
                "name": name,
                "admin_id": admin_id,
                "from": before.map(|(_, name)| name),
            }),
        );
        tx.map_old_admin(admin_id, account.id, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The old console's admins, by old id; empty on a database vexil created.
    pub async fn old_admins(&self) -> Result<Vec<OldAdminRow>, AppError> {
        Ok(self.db.old_admins().await?)
    }
}
