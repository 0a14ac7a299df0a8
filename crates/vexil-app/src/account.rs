//! Accounts: creating one (with an argon2id password hash), changing its role,
//! disabling it, listing them. Each change is audited (`console.user.*`) in the
//! transaction that makes it.
//!
//! Names follow the flag-key grammar; passwords have at least `MIN_PASSWORD_CHARS`
//! (12). `check_password` costs the same argon2 work for an unknown name. `Admin` says
//! who changes an account: an `Actor` (with `Action::ManageAccounts`), or the CLI's
//! operator, whose database access is that permission (`admin_id` NULL, `"via":
//! "cli"`).

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use vexil_core::audit::{TARGET_USER, USER_ADD, USER_DISABLE, USER_SET_ROLE, Via};
use vexil_core::{Action, FlagKey, Role};
use vexil_store::{NewAudit, NewUser, UserRow};

use crate::app::{Actor, App};
use crate::error::AppError;

/// Who changes an account: an account acting in the console or API, or an operator
/// with database access at the CLI (the break-glass path, which also creates the
/// first account).
#[derive(Debug, Clone, Copy)]
pub enum Admin<'a> {
    Account(&'a Actor),
    Cli,
}

/// The shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

impl App {
    /// Creates an account `name` with `role`, its password stored as an argon2id hash.
    pub async fn add_user(
        &self,
        admin: Admin<'_>,
        name: &str,
        role: Role,
        password: &SecretString,
    ) -> Result<i64, AppError> {
        App::authorize_admin(admin)?;
        // Account names follow the flag-key grammar: safe in URLs, logs and SQL.
        FlagKey::parse(name).map_err(|error| AppError::InvalidAccountName { error })?;
        if password.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
            return Err(AppError::WeakPassword {
                min: MIN_PASSWORD_CHARS,
            });
        }
        if self.db.user_by_name(name).await?.is_some() {
            return Err(AppError::AccountExists {
                name: name.to_owned(),
            });
        }
        let password_hash = self.passwords.hash(password.clone()).await?;
        let now = self.clock.now();
        let mut tx = self.db.begin_write().await?;
        let audit = self.user_audit(admin, USER_ADD, name, json!({"name": name, "role": role}));
        let user = NewUser {
            name,
            role: role.as_str(),
            password_hash: &password_hash,
            created_at: now,
        };
        let id = tx.insert_user(&user, &audit).await.map_err(|e| {
            // Created by someone else since the check above.
            if e.is_unique_violation() {
                AppError::AccountExists {
                    name: name.to_owned(),
                }
            } else {
                AppError::Store(e)
            }
        })?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn set_role(&self, admin: Admin<'_>, name: &str, role: Role) -> Result<(), AppError> {
        App::authorize_admin(admin)?;
        let user = self.existing_user(name).await?;
        if user.role == role.as_str() {
            return Err(AppError::SameRole {
                name: user.name,
                role,
            });
        }
        let audit = self.user_audit(
            admin,
            USER_SET_ROLE,
            name,
            json!({"name": name, "from": user.role, "to": role}),
        );
        let mut tx = self.db.begin_write().await?;
        tx.set_role(user.id, role.as_str(), &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn disable_user(&self, admin: Admin<'_>, name: &str) -> Result<(), AppError> {
        App::authorize_admin(admin)?;
        let user = self.existing_user(name).await?;
        if user.disabled {
            return Err(AppError::Disabled { name: user.name });
        }
        let audit = self.user_audit(admin, USER_DISABLE, name, json!({"name": name}));
        let mut tx = self.db.begin_write().await?;
        tx.disable_user(user.id, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, AppError> {
        Ok(self.db.users().await?)
    }

    /// Whether `password` is `name`'s. An unknown account costs the same argon2 work
    /// as a known one, so timing does not tell which names exist. `AppError::Busy`
    /// when too many checks are running and waiting already (`password.rs`).
    pub async fn check_password(
        &self,
        name: &str,
        password: &SecretString,
    ) -> Result<bool, AppError> {
        let user = self.db.user_by_name(name).await?;
        let checked = self.check_account_password(user, password).await?;
        Ok(matches!(checked, crate::sign_in::Checked::Right))
    }

    pub(crate) async fn existing_user(&self, name: &str) -> Result<UserRow, AppError> {
        self.db
            .user_by_name(name)
            .await?
            .ok_or_else(|| AppError::UnknownAccount {
                name: name.to_owned(),
            })
    }

    /// An account acting through the console or API must be allowed to manage
    /// accounts; the CLI's operator has database access, which is that permission.
    pub(crate) fn authorize_admin(admin: Admin<'_>) -> Result<(), AppError> {
        match admin {
            Admin::Account(actor) => actor.may(Action::ManageAccounts),
            Admin::Cli => Ok(()),
        }
    }

    pub(crate) fn user_audit(
        &self,
        admin: Admin<'_>,
        action: &'static str,
        name: &str,
        mut payload: serde_json::Value,
    ) -> NewAudit {
        let (admin_id, via) = match admin {
            Admin::Account(actor) => (Some(actor.id()), Via::Console),
            Admin::Cli => (None, Via::Cli),
        };
        payload["via"] = json!(via);
        NewAudit {
            created_at: self.clock.now(),
            admin_id,
            action,
            target_type: TARGET_USER,
            target_id: name.to_owned(),
            payload,
        }
    }
}
