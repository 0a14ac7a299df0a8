//! Client keys: what an application follows a server with (docs/roles.md#client-keys). A key reads one
//! env's flags and reports that env's processes, nothing else; it is shown once,
//! stored as SHA-256, and created and revoked by a superadmin (or an operator with
//! database access at the CLI), each change audited (`console.client_key.*`).
//!
//! A key is `vxc_` and 64 hexadecimal characters (256 random bits): the prefix tells
//! it apart from an account's API token (`vxl_`) at a glance and to secret scanners.
//! As for tokens, a presented key is hashed and found by its hash, so no comparison
//! of secrets happens in Rust.
//!
//! `Client` is the only "who" of the evaluation plane, made only by `client_for_key` or
//! `client_for_events_token`. `report_process` checks a following process's report
//! (`Report::check`) and writes it as a live instance whose id is namespaced by its
//! key, so no key can overwrite another's rows.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vexil_core::audit::{CLIENT_KEY_CREATE, CLIENT_KEY_REVOKE, TARGET_CLIENT_KEY, Via};
use vexil_core::sdk::Report;
use vexil_core::{Action, AppName, Env};
use vexil_store::{ClientKeyRow, InstanceReport, NewAudit, NewClientKey, Receipt, Transport};

use crate::account::Admin;
use crate::app::App;
use crate::error::AppError;

/// What every client key starts with.
pub const CLIENT_KEY_PREFIX: &str = "vxc_";

/// How much of a key a listing shows: the prefix and 8 characters.
const SHOWN_CHARS: usize = CLIENT_KEY_PREFIX.len() + 8;

/// A presented client key that is valid now: the only "who" the evaluation plane
/// accepts. Only vexil-app makes one ([`App::client_for_key`],
/// [`App::client_for_events_token`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    id: i64,
    env: Env,
    app: AppName,
    /// Opens this key's OFREP event stream (`events_token`).
    events_token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("env", &self.env)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The key's id (what revocation names).
    pub fn key_id(&self) -> i64 {
        self.id
    }

    /// The one env this key reads.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The application the key was made for.
    pub fn app(&self) -> &AppName {
        &self.app
    }

    /// What opens this key's OFREP event stream in a URL (a browser's `EventSource`
    /// sends no `Authorization` header): `<id>.<digest>`, derived from the key's hash,
    /// so it needs no secret of the server's and dies with the key. It opens the
    /// change notifications of the key's env, never a flag value.
    pub fn events_token(&self) -> &str {
        &self.events_token
    }
}

/// The digest part of a key's events token.
fn events_digest(key_hash: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(b"vexil ofrep events\n");
    digest.update(key_hash);
    hex::encode(&digest.finalize()[..16])
}

impl App {
    /// A new key for `app`'s processes in `env`, audited; returns its id and the key,
    /// which is shown once and never stored. `door` is where an account asked
    /// (the console or the API); the CLI's operator is always `cli`.
    pub async fn create_client_key(
        &self,
        admin: Admin<'_>,
        door: Via,
        env: &Env,
        app: &AppName,
    ) -> Result<(i64, SecretString), AppError> {
        App::authorize_client_keys(admin)?;
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(AppError::Random)?;
        let key = SecretString::from(format!("{CLIENT_KEY_PREFIX}{}", hex::encode(random)));
        let shown = &key.expose_secret()[..SHOWN_CHARS];
        let audit = self.client_key_audit(
            admin,
            door,
            CLIENT_KEY_CREATE,
            None,
            json!({"env": env, "app": app.as_str(), "key": shown}),
        );
        let created_by = match admin {
            Admin::Account(actor) => Some(actor.name()),
            Admin::Cli => None,
        };
        let new = NewClientKey {
            env: env.as_str(),
            app: app.as_str(),
            prefix: shown,
            key_hash: &hash(&key),
            created_by,
        };
        let mut tx = self.db.begin_write().await?;
        let id = tx.insert_client_key(&new, &audit).await?;
        tx.commit().await?;
        Ok((id, key))
    }

    /// Every client key, newest first.
    pub async fn client_keys(&self, admin: Admin<'_>) -> Result<Vec<ClientKeyRow>, AppError> {
        App::authorize_client_keys(admin)?;
        Ok(self.db.client_keys().await?)
    }

    /// Revokes key `id` for good, audited; returns it, revoked. Servers refuse it
    /// within their key cache window, open streams included.
    pub async fn revoke_client_key(
        &self,
        admin: Admin<'_>,
        door: Via,
        id: i64,
    ) -> Result<ClientKeyRow, AppError> {
        App::authorize_client_keys(admin)?;
        let key = self
            .db
            .client_key_by_id(id)
            .await?
            .ok_or(AppError::UnknownClientKey { id })?;
        let audit = self.client_key_audit(
            admin,
            door,
            CLIENT_KEY_REVOKE,
            Some(id),
            json!({"id": id, "env": key.env, "app": key.app, "key": key.prefix}),
        );
        let mut tx = self.db.begin_write().await?;
        if !tx.revoke_client_key(id, &audit).await? {
            return Err(AppError::ClientKeyRevoked { id });
        }
        tx.commit().await?;
        Ok(ClientKeyRow {
            revoked_at: Some(audit.created_at),
            ..key
        })
    }

    /// The client a presented key acts for: it must exist and not be revoked. Its use
    /// is noted apart (`note_client_key_use`), as often as the caller sees fit.
    pub async fn client_for_key(&self, key: &SecretString) -> Result<Client, AppError> {
        let row = self
            .db
            .client_key_by_hash(&hash(key))
            .await?
            .ok_or(AppError::BadClientKey)?;
        if row.revoked_at.is_some() {
            return Err(AppError::BadClientKey);
        }
        // A key's env and app were checked when it was made; one that no longer
        // parses (an env since removed from the configuration) reads nothing.
        let env = self
            .envs
            .parse(&row.env)
            .map_err(|_| AppError::BadClientKey)?;
        let app = AppName::parse(&row.app).map_err(|_| AppError::BadClientKey)?;
        Ok(Client {
            id: row.id,
            env,
            app,
            events_token: format!("{}.{}", row.id, events_digest(&hash(key))),
        })
    }

    /// Notes that key `id` was used now: what the console lists as "last used" (not
    /// audited: it changes no permission).
    pub async fn note_client_key_use(&self, id: i64) -> Result<(), AppError> {
        Ok(self.db.touch_client_key(id, self.clock.now()).await?)
    }

    /// The client an OFREP events token (`Client::events_token`) acts for: its key
    /// must exist and not be revoked. Compared in constant time.
    pub async fn client_for_events_token(&self, token: &str) -> Result<Client, AppError> {
        let (id, digest) = token.split_once('.').ok_or(AppError::BadClientKey)?;
        let id: i64 = id.parse().map_err(|_| AppError::BadClientKey)?;
        let key_hash = self
            .db
            .live_client_key_hash(id)
            .await?
            .ok_or(AppError::BadClientKey)?;
        let expected = events_digest(&key_hash);
        if !bool::from(expected.as_bytes().ct_eq(digest.as_bytes())) {
            return Err(AppError::BadClientKey);
        }
        let row = self
            .db
            .client_key_by_id(id)
            .await?
            .ok_or(AppError::BadClientKey)?;
        let env = self
            .envs
            .parse(&row.env)
            .map_err(|_| AppError::BadClientKey)?;
        let app = AppName::parse(&row.app).map_err(|_| AppError::BadClientKey)?;
        Ok(Client {
            id,
            env,
            app,
            events_token: token.to_owned(),
        })
    }

    /// The ids of every revoked key: a server ends the streams opened with them.
    pub async fn revoked_client_keys(&self) -> Result<Vec<i64>, AppError> {
        Ok(self.db.revoked_client_keys().await?)
    }

    /// Records what a process following a server reports about itself, as a live
    /// instance of the key's env exactly like a process linked to the database (not
    /// audited: telemetry). Refused, naming the field, when it does not fit the flags
    /// or the key. The row's id is the key's id and the process's own, so that one
    /// key can never overwrite another's processes, nor a library process's row.
    pub async fn report_process(&self, client: &Client, report: Report) -> Result<(), AppError> {
        let checked = report.check(&self.flags(), &client.env, &client.app)?;
        let report = InstanceReport {
            id: format!("k{}-{}", client.id, checked.instance),
            env: client.env.to_string(),
            host: checked.host,
            pid: checked.pid,
            application: client.app.to_string(),
            version: checked.version,
            started_at: checked.started_at,
            // Stamped by the database's clock when written.
            last_seen: checked.started_at,
            live: true,
            env_layer: checked.env_layer,
            applied: checked
                .applied
                .into_iter()
                .map(|(key, held)| {
                    let receipt = Receipt {
                        audit_id: held.audit_id,
                        applied_at: held.applied_at,
                    };
                    (key, receipt)
                })
                .collect(),
            language: checked.language,
            transport: Transport::Server,
            change_id: checked.change_id,
        };
        Ok(self.db.report_instance(&report).await?)
    }

    fn authorize_client_keys(admin: Admin<'_>) -> Result<(), AppError> {
        match admin {
            Admin::Account(actor) => actor.may(Action::ManageClientKeys),
            Admin::Cli => Ok(()),
        }
    }

    fn client_key_audit(
        &self,
        admin: Admin<'_>,
        door: Via,
        action: &'static str,
        id: Option<i64>,
        mut payload: serde_json::Value,
    ) -> NewAudit {
        let (admin_id, via) = match admin {
            Admin::Account(actor) => (Some(actor.id()), door),
            Admin::Cli => (None, Via::Cli),
        };
        payload["via"] = json!(via);
        NewAudit {
            created_at: self.clock.now(),
            admin_id,
            action,
            target_type: TARGET_CLIENT_KEY,
            // A new key's id is known once it is stored (`insert_client_key`).
            target_id: id.map(|id| id.to_string()).unwrap_or_default(),
            payload,
        }
    }
}

fn hash(key: &SecretString) -> Vec<u8> {
    Sha256::digest(key.expose_secret().as_bytes()).to_vec()
}
