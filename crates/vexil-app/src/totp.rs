//! TOTP (RFC 6238): enrolment, and checking a code, once only.
//!
//! Six digits, 30-second steps, SHA-1 (what every authenticator app reads from an
//! `otpauth://` URI), and a window of one step either side for clock drift. The
//! secret is stored encrypted (`secret_key.rs`); the last accepted step is stored
//! beside it, and a code is accepted only for a later step, by one conditional
//! UPDATE, so a replay fails across processes too.

use secrecy::SecretString;
use serde_json::json;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use vexil_core::audit::USER_TOTP_ENROL;

use crate::account::Admin;
use crate::app::{Actor, App};
use crate::error::AppError;

/// The issuer shown in authenticator apps.
const ISSUER: &str = "vexil";

impl App {
    /// Enrols (or re-enrols, replacing the old secret) TOTP for `name`, audited, and
    /// returns the `otpauth://` URI to show the operator once.
    pub async fn enrol_totp(&self, admin: Admin<'_>, name: &str) -> Result<SecretString, AppError> {
        App::authorize_admin(admin)?;
        let key = self.secret_key()?;
        let user = self.existing_user(name).await?;
        let secret = Secret::generate();
        let totp = totp_for(secret.as_ref(), &user.name)?;
        let uri = totp.to_url().map_err(|e| AppError::Totp {
            reason: e.to_string(),
        })?;
        let sealed = key.encrypt(secret.as_ref(), &user.name);
        let audit = self.user_audit(
            admin,
            USER_TOTP_ENROL,
            &user.name,
            json!({"name": user.name}),
        );
        let mut tx = self.db.begin_write().await?;
        tx.set_totp_secret(user.id, &sealed, &audit).await?;
        tx.commit().await?;
        Ok(SecretString::from(uri))
    }

    /// Accepts `code` for `actor` if it is current and no code of its step (or a
    /// later one) was accepted before; it cannot be accepted again.
    pub async fn check_totp(&self, actor: &Actor, code: &str) -> Result<(), AppError> {
        let user = self.existing_user(&actor.name).await?;
        let sealed = user
            .totp_secret
            .as_deref()
            .ok_or_else(|| AppError::TotpNotEnrolled {
                name: user.name.clone(),
            })?;
        let secret = self
            .secret_key()?
            .decrypt(sealed, &user.name)
            .ok_or_else(|| AppError::TotpUnreadable {
                name: user.name.clone(),
            })?;
        let totp = totp_for(&secret, &user.name)?;
        let now = u64::try_from(self.clock.now().timestamp()).unwrap_or(0);
        let step = totp.check(code.trim(), now).ok_or(AppError::TotpInvalid)?;
        let step = i64::try_from(step).map_err(|_| AppError::TotpInvalid)?;
        if !self.db.consume_totp_step(user.id, step).await? {
            return Err(AppError::TotpReplayed);
        }
        Ok(())
    }
}

fn totp_for(secret: &[u8], account: &str) -> Result<Totp, AppError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| AppError::Totp {
            reason: e.to_string(),
        })
}

/// The code an authenticator shows at `unix_seconds`, for tests of the callers.
pub fn code_at(otpauth_uri: &str, unix_seconds: u64) -> Result<String, AppError> {
    let totp = Totp::from_url(otpauth_uri).map_err(|e| AppError::Totp {
        reason: e.to_string(),
    })?;
    Ok(totp.generate(unix_seconds).to_string())
}
