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
use crate::elevation::TotpCode;
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
        let uri = totp.to_url().map_err(|e| AppError::Totp(e.into()))?;
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
    /// Elevation goes through `App::elevate`, which audits and locks.
    pub(crate) async fn check_totp(&self, actor: &Actor, code: &TotpCode) -> Result<(), AppError> {
        let user = self.existing_user(actor.name()).await?;
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
        let step = totp
            .check(code.as_str(), now)
            .ok_or(AppError::TotpInvalid)?;
        let step = i64::try_from(step).map_err(|_| AppError::TotpInvalid)?;
        if !self.db.consume_totp_step(user.id, step).await? {
            return Err(AppError::TotpReplayed);
        }
        Ok(())
    }
}

/// A secret generated for an account enrolling itself in the console, sealed with the
/// secret key (so the session holding it meanwhile never holds it in clear), and
/// stored only once a first code from it is confirmed.
pub struct PendingTotp {
    /// The `otpauth://` URI to show (as a QR code) to the account, once.
    pub uri: SecretString,
    /// The sealed secret, hex, to hand back to `confirm_own_totp`.
    pub sealed: String,
}

impl App {
    /// Starts self-service enrolment for `actor`, whose `password` it asks: a second
    /// factor is bound only by someone who knows the first, not by whoever holds a
    /// stolen session cookie. Only an account without TOTP may enrol itself
    /// (replacing a secret would let a stolen session take over the second factor, so
    /// re-enrolment stays with an operator, `vexil user totp`); that is checked
    /// first, so that an enrolled account's session is no oracle for its password.
    /// The password is checked as a sign-in is, locks and audit row included
    /// (`App::recheck_password`).
    pub async fn begin_own_totp(
        &self,
        actor: &Actor,
        password: &SecretString,
        from: &str,
    ) -> Result<PendingTotp, AppError> {
        let key = self.secret_key()?;
        let user = self.existing_user(actor.name()).await?;
        if user.totp_secret.is_some() {
            return Err(AppError::TotpAlreadyEnrolled { name: user.name });
        }
        self.recheck_password(actor, password, "totp_setup", from)
            .await?;
        let secret = Secret::generate();
        let totp = totp_for(secret.as_ref(), &user.name)?;
        let uri = totp.to_url().map_err(|e| AppError::Totp(e.into()))?;
        Ok(PendingTotp {
            uri: SecretString::from(uri),
            sealed: hex::encode(key.encrypt(secret.as_ref(), &user.name)),
        })
    }

    /// The `otpauth://` URI of a pending enrolment, to show its QR code again (after a
    /// mistyped confirming code, say).
    pub fn pending_totp_uri(&self, actor: &Actor, sealed: &str) -> Result<SecretString, AppError> {
        let secret = self.open_pending(actor, sealed)?;
        let uri = totp_for(&secret, actor.name())?
            .to_url()
            .map_err(|e| AppError::Totp(e.into()))?;
        Ok(SecretString::from(uri))
    }

    /// Stores the pending secret once `code` shows the authenticator holds it,
    /// audited (`console.user.totp_enrol`, via the console). The confirming code is
    /// spent: it cannot elevate afterwards.
    pub async fn confirm_own_totp(
        &self,
        actor: &Actor,
        sealed: &str,
        code: &TotpCode,
    ) -> Result<(), AppError> {
        let user = self.existing_user(actor.name()).await?;
        if user.totp_secret.is_some() {
            return Err(AppError::TotpAlreadyEnrolled { name: user.name });
        }
        let secret = self.open_pending(actor, sealed)?;
        let totp = totp_for(&secret, &user.name)?;
        let now = u64::try_from(self.clock.now().timestamp()).unwrap_or(0);
        let step = totp
            .check(code.as_str(), now)
            .ok_or(AppError::TotpInvalid)?;
        let step = i64::try_from(step).map_err(|_| AppError::TotpInvalid)?;
        let audit = self.user_audit(
            Admin::Account(actor),
            USER_TOTP_ENROL,
            &user.name,
            json!({"name": user.name}),
        );
        let sealed = self.secret_key()?.encrypt(&secret, &user.name);
        let mut tx = self.db.begin_write().await?;
        tx.set_totp_secret(user.id, &sealed, &audit).await?;
        tx.commit().await?;
        self.db.consume_totp_step(user.id, step).await?;
        Ok(())
    }

    /// Whether `name` has TOTP enrolled.
    pub async fn has_totp(&self, name: &str) -> Result<bool, AppError> {
        Ok(self.existing_user(name).await?.totp_secret.is_some())
    }

    fn open_pending(&self, actor: &Actor, sealed: &str) -> Result<Vec<u8>, AppError> {
        let unreadable = || AppError::TotpUnreadable {
            name: actor.name().to_owned(),
        };
        let sealed = hex::decode(sealed).map_err(|_| unreadable())?;
        self.secret_key()?
            .decrypt(&sealed, actor.name())
            .ok_or_else(unreadable)
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
        .map_err(|e| AppError::Totp(e.into()))
}

/// The code an authenticator shows at `unix_seconds`, for tests of the callers.
pub fn code_at(otpauth_uri: &str, unix_seconds: u64) -> Result<String, AppError> {
    let totp = Totp::from_url(otpauth_uri).map_err(|e| AppError::Totp(e.into()))?;
    Ok(totp.generate(unix_seconds).to_string())
}
