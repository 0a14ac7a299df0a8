//! `SecretKey`: the instance key that encrypts TOTP secrets at rest, and from which
//! the keys proving audit rows and sessions are derived (`SecretKey::derive`).
//!
//! ChaCha20-Poly1305 with a random nonce per secret and the account name as
//! associated data, so a secret copied to another account's row does not decrypt.
//! The key comes from `VEXIL_SECRET_KEY` (64 hex characters) or, for a SQLite
//! database, from a key file vexil creates beside it (mode 0600); reading either is
//! the binary's job. Rotation: set the new key, then re-enrol each account
//! (`vexil user totp NAME`); a secret the key cannot open is reported as such.

use chacha20poly1305::aead::{Aead, Generate, Key, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use secrecy::SecretString;

use crate::error::AppError;

/// 32 bytes. Its `Debug` never shows them.
#[derive(Clone)]
pub struct SecretKey(Key<ChaCha20Poly1305>);

/// The bytes of a nonce, stored before the ciphertext.
const NONCE_LEN: usize = 12;

impl SecretKey {
    /// A new random key.
    pub fn generate() -> SecretKey {
        SecretKey(Key::<ChaCha20Poly1305>::generate())
    }

    /// A key written as 64 hexadecimal characters.
    pub fn from_hex(text: &str) -> Result<SecretKey, AppError> {
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or(AppError::BadSecretKey)?;
        let key = Key::<ChaCha20Poly1305>::try_from(bytes.as_slice())
            .map_err(|_| AppError::BadSecretKey)?;
        Ok(SecretKey(key))
    }

    /// The key as 64 hexadecimal characters, for a key file.
    pub fn to_hex(&self) -> SecretString {
        SecretString::from(hex::encode(self.0.as_slice()))
    }

    /// A key for one purpose (`label`), derived from this one with HMAC-SHA256: the
    /// audit log's proofs and the sessions' MACs never share a key with each other
    /// or with the TOTP cipher.
    pub(crate) fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// `nonce || ciphertext`, bound to `context` (the account name).
    pub(crate) fn encrypt(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce = Nonce::generate();
        let cipher = ChaCha20Poly1305::new(&self.0);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext, or `None` when `data` was not sealed by this key for `context`.
    pub(crate) fn decrypt(&self, data: &[u8], context: &str) -> Option<Vec<u8>> {
        if data.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).ok()?;
        ChaCha20Poly1305::new(&self.0)
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .ok()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn sealed_for_one_account_only() {
        let key = SecretKey::generate();
        let sealed = key.encrypt(b"totp secret", "alice");
        assert_eq!(
            key.decrypt(&sealed, "alice").as_deref(),
            Some(&b"totp secret"[..])
        );
        assert_eq!(key.decrypt(&sealed, "bob"), None);
        assert_eq!(SecretKey::generate().decrypt(&sealed, "alice"), None);
        let again = SecretKey::from_hex(key.to_hex().expose_secret()).unwrap();
        assert_eq!(
            again.decrypt(&sealed, "alice").as_deref(),
            Some(&b"totp secret"[..])
        );
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        assert!(matches!(
            SecretKey::from_hex("abcd"),
            Err(AppError::BadSecretKey)
        ));
    }
}
