//! `FormKey`: the key of the sign-in form's CSRF token, which is stateless so that a
//! visitor who has not signed in costs no database write (docs/console.md).
//!
//! The visitor's browser holds a random value in a cookie; the form carries
//! `HMAC(key, value)`. A cross-site form cannot read the cookie, and a cookie
//! planted from a sibling domain cannot come with a matching token without the key.
//! The key is derived from the secret key, so every server of a deployment accepts
//! every other's forms; without a secret key it is random per process (a form
//! from one server is then refused by another, with the page that says to reload).

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::app::App;

/// The sign-in form's key.
#[derive(Clone)]
pub struct FormKey([u8; 32]);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(***)")
    }
}

impl FormKey {
    /// A key of this process only.
    pub(crate) fn random() -> FormKey {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without randomness, no form token can be trusted: an all-zero key would
            // be guessable, so every token is refused instead (`check` with `open`).
            return FormKey([0; 32]);
        }
        FormKey(key)
    }

    fn open(&self) -> bool {
        self.0 != [0; 32]
    }

    /// The token a form carries for the browser's `value`, hex.
    pub fn token(&self, value: &str) -> String {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(b"vexil.sign-in-form.v1\0");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `token` is this key's for `value` (in constant time).
    pub fn check(&self, value: &str, token: &str) -> bool {
        self.open()
            && !value.is_empty()
            && bool::from(self.token(value).as_bytes().ct_eq(token.as_bytes()))
    }
}

impl App {
    /// The sign-in form's key (derived from the secret key when there is one).
    pub fn form_key(&self) -> &FormKey {
        &self.form_key
    }
}

pub(crate) fn derived(secret_key: &crate::SecretKey) -> FormKey {
    FormKey(secret_key.derive("vexil.sign-in-form.v1"))
}

#[cfg(test)]
mod tests {
    use super::FormKey;

    #[test]
    fn a_token_is_good_for_its_value_and_key_only() {
        let key = FormKey::random();
        let token = key.token("abc");
        assert!(key.check("abc", &token));
        assert!(!key.check("abd", &token));
        assert!(!key.check("", &key.token("")));
        assert!(!FormKey::random().check("abc", &token));
        assert!(!FormKey([0; 32]).check("abc", &FormKey([0; 32]).token("abc")));
    }
}
