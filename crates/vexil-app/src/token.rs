//! API tokens: random, shown once, stored only as SHA-256, revocable.
//!
//! A token is `vxl_` and 64 hexadecimal characters (256 random bits): the prefix makes
//! a leaked token recognisable to secret scanners. Lookups hash the presented token
//! and find the row by its hash, so no comparison of secrets happens in Rust.
//!
//! `actor_for_token` gives one `BadToken` for an unknown, a revoked and a disabled
//! account's token alike.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use vexil_core::audit::{TOKEN_CREATE, TOKEN_REVOKE};
use vexil_store::TokenRow;

use crate::account::Admin;
use crate::app::{Actor, App};
use crate::error::AppError;

/// What every vexil token starts with.
pub const TOKEN_PREFIX: &str = "vxl_";

/// How much of a token a listing shows: the prefix and 8 characters.
const SHOWN_CHARS: usize = TOKEN_PREFIX.len() + 8;

impl App {
    /// A new token for account `name`, audited; returns its id and the token, which is
    /// shown once and never stored.
    pub async fn create_token(
        &self,
        admin: Admin<'_>,
        name: &str,
    ) -> Result<(i64, SecretString), AppError> {
        App::authorize_admin(admin)?;
        let user = self.existing_user(name).await?;
        if user.disabled {
            return Err(AppError::Disabled { name: user.name });
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(AppError::Random)?;
        let token = SecretString::from(format!("{TOKEN_PREFIX}{}", hex::encode(random)));
        let shown = &token.expose_secret()[..SHOWN_CHARS];
        let audit = self.user_audit(
            admin,
            TOKEN_CREATE,
            &user.name,
            json!({"name": user.name, "token": shown}),
        );
        let mut tx = self.db.begin_write().await?;
        let id = tx
            .insert_token(user.id, shown, &hash(&token), &audit)
            .await?;
        tx.commit().await?;
        Ok((id, token))
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, AppError> {
        Ok(self.db.tokens().await?)
    }

    /// Revokes token `id` for good, audited.
    pub async fn revoke_token(&self, admin: Admin<'_>, id: i64) -> Result<(), AppError> {
        App::authorize_admin(admin)?;
        let token = self
            .db
            .token_by_id(id)
            .await?
            .ok_or(AppError::UnknownToken { id })?;
        let audit = self.user_audit(
            admin,
            TOKEN_REVOKE,
            &token.user_name,
            json!({"name": token.user_name, "token": token.prefix}),
        );
        let mut tx = self.db.begin_write().await?;
        if !tx.revoke_token(id, &audit).await? {
            return Err(AppError::TokenRevoked { id });
        }
        tx.commit().await?;
        Ok(())
    }

    /// The account a presented token acts for: it must exist, not be revoked, and
    /// belong to an enabled account. The account's current role applies.
    pub async fn actor_for_token(&self, token: &SecretString) -> Result<Actor, AppError> {
        let row = self
            .db
            .token_by_hash(&hash(token))
            .await?
            .ok_or(AppError::BadToken)?;
        if row.revoked_at.is_some() {
            return Err(AppError::BadToken);
        }
        let actor = self.actor(&row.user_name).await.map_err(|e| match e {
            // One answer for every token that cannot act; a database failure stays one.
            AppError::UnknownAccount { .. } | AppError::Disabled { .. } => AppError::BadToken,
            other => other,
        })?;
        self.db.touch_token(row.id, self.clock.now()).await?;
        Ok(actor)
    }
}

fn hash(token: &SecretString) -> Vec<u8> {
    Sha256::digest(token.expose_secret().as_bytes()).to_vec()
}
