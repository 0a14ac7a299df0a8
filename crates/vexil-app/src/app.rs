//! `App`, the state every use case reads, and `Actor`, an account allowed to act.
//!
//! `App::env_layer` gives an env's variables as far as vexil knows them: this process's
//! own for its own env, and for any other the layer its live instances report where
//! they agree, with the drift where they do not.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;

use vexil_core::reported::MASTER_KEY;
use vexil_core::{
    Action, Clearance, Clock, Drift, Env, EnvSnapshot, Envs, FlagSet, MasterSwitch, Role,
    check_role, reported_layer,
};
use vexil_store::{Db, InstanceReport, WriteTx};

use crate::error::AppError;
use crate::secret_key::SecretKey;

/// What the use cases need, built once per process.
pub struct App {
    pub(crate) db: Db,
    /// The declarations, replaced whole when the flags file is reloaded: a use case
    /// loads them once and works on that set throughout.
    pub(crate) flags: ArcSwap<FlagSet>,
    pub(crate) envs: Envs,
    /// The env this process belongs to (`VEXIL_ENV`), if it says: its `FLAG_*`
    /// variables are the env layer of that env only.
    pub(crate) process_env: Option<Env>,
    pub(crate) env_snapshot: EnvSnapshot,
    pub(crate) clock: Arc<dyn Clock>,
    /// Encrypts TOTP secrets; `None` when none was configured (TOTP then refuses).
    pub(crate) secret_key: Option<SecretKey>,
    /// Proves the audit rows this process writes, and checks others' proofs;
    /// derived from the secret key.
    pub(crate) audit_mac: Option<crate::audit_integrity::AuditMac>,
    /// This process's own view of its env's flags, if it keeps one (`vexil serve`): a
    /// flip made here is read into it at once, before any notification arrives.
    pub(crate) view: Option<vexil::Flags>,
    /// When open promotions expire, and whether four eyes are required.
    pub(crate) windows: vexil_core::promotion::Windows,
    /// How long a TOTP elevation lasts.
    pub(crate) elevation_window: std::time::Duration,
    /// Told after every flag change this process commits (a server's caches).
    pub(crate) on_change: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// argon2 hashing and checking, a bounded number at a time.
    pub(crate) passwords: crate::password::Passwords,
    /// Failed sign-ins for names that are no account, in this process.
    pub(crate) unknown_names: std::sync::Mutex<crate::sign_in::UnknownNames>,
    /// The sign-in form's CSRF key.
    pub(crate) form_key: crate::form_key::FormKey,
}

/// An account that exists and is not disabled: the only thing a use case accepts as
/// "who is acting". Only this crate makes one (`App::actor`, a sign-in, a token), so
/// no door can act as an account it did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    id: i64,
    name: String,
    role: Role,
}

impl Actor {
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the role allows `action` at all, elevation aside: what a page that only
    /// reads checks, and what a page shows of what the account may do. Every change
    /// is authorized again, whole, by its use case (`App::authorize`).
    pub fn may(&self, action: Action) -> Result<(), AppError> {
        check_role(self.role, action).map(|_clearance| ())?;
        Ok(())
    }

    /// Whether an elevation would let this account do anything more: some action its
    /// role may do needs one. Pages offer elevation only then.
    pub fn elevation_helps(&self) -> bool {
        Action::ALL
            .iter()
            .any(|&action| check_role(self.role, action) == Ok(Clearance::NeedsElevation))
    }
}

impl App {
    pub fn new(
        db: Db,
        flags: FlagSet,
        envs: Envs,
        process_env: Option<Env>,
        env_snapshot: EnvSnapshot,
        clock: Arc<dyn Clock>,
    ) -> App {
        App {
            db,
            flags: ArcSwap::from_pointee(flags),
            envs,
            process_env,
            env_snapshot,
            clock,
            secret_key: None,
            audit_mac: None,
            view: None,
            windows: vexil_core::promotion::Windows::default(),
            elevation_window: crate::elevation::DEFAULT_ELEVATION_WINDOW,
            on_change: std::sync::OnceLock::new(),
            passwords: crate::password::Passwords::per_core(),
            unknown_names: std::sync::Mutex::default(),
            form_key: crate::form_key::FormKey::random(),
        }
    }

    /// The key that encrypts TOTP secrets at rest, and proves the audit rows this
    /// process writes (docs/audit-integrity.md).
    pub fn with_secret_key(mut self, secret_key: SecretKey) -> App {
        let mac = crate::audit_integrity::AuditMac::new(&secret_key);
        self.db = self.db.with_prover(Arc::new(mac.clone()));
        self.audit_mac = Some(mac);
        self.form_key = crate::form_key::derived(&secret_key);
        self.secret_key = Some(secret_key);
        self
    }

    /// The process's own flags handle, which flips made here refresh at once.
    pub fn with_view(mut self, view: vexil::Flags) -> App {
        self.view = Some(view);
        self
    }

    /// Calls `listener` after every flag change this process commits, before the use
    /// case returns, so that a cache in front of the flags reads its own writes. One
    /// listener per process; a second is refused (`false`).
    pub fn on_flag_change(&self, listener: impl Fn() + Send + Sync + 'static) -> bool {
        self.on_change.set(Box::new(listener)).is_ok()
    }

    pub(crate) fn secret_key(&self) -> Result<&SecretKey, AppError> {
        self.secret_key.as_ref().ok_or(AppError::NoSecretKey)
    }

    /// This process's own view of its env, if it keeps one.
    pub fn view(&self) -> Option<&vexil::Flags> {
        self.view.as_ref()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The declarations in force.
    pub fn flags(&self) -> Arc<FlagSet> {
        self.flags.load_full()
    }

    /// Replaces the declarations (a reloaded flags file) for every use case from now
    /// on, and in this process's view.
    pub async fn replace_flags(&self, flags: FlagSet) {
        if let Some(view) = &self.view {
            view.reload(flags.clone()).await;
        }
        self.flags.store(Arc::new(flags));
        if let Some(listener) = self.on_change.get() {
            listener();
        }
    }

    /// The time as the use cases see it (a test clock in tests).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The env this process belongs to (`VEXIL_ENV`), if it said.
    pub fn process_env(&self) -> Option<&Env> {
        self.process_env.as_ref()
    }

    pub fn envs(&self) -> &Envs {
        &self.envs
    }

    /// The account `name`, if it exists and is enabled.
    pub async fn actor(&self, name: &str) -> Result<Actor, AppError> {
        let user = self
            .db
            .user_by_name(name)
            .await?
            .ok_or_else(|| AppError::UnknownAccount {
                name: name.to_owned(),
            })?;
        if user.disabled {
            return Err(AppError::Disabled { name: user.name });
        }
        let role = Role::parse(&user.role).map_err(|_| {
            AppError::Store(vexil_store::StoreError::Corrupt {
                what: format!("the role of account {:?}", user.name),
            })
        })?;
        Ok(Actor {
            id: user.id,
            name: user.name,
            role,
        })
    }

    /// The variables of `env` as far as vexil knows them: this process's own when it
    /// belongs to `env`; otherwise what the live processes of `env` report, where they
    /// agree (`vexil_core::reported_layer`). Drift, where they disagree, in both cases.
    pub(crate) async fn env_layer(&self, env: &Env) -> Result<EnvLayer<'_>, AppError> {
        let reports = self
            .db
            .instances(
                Some(env.as_str()),
                crate::instances::GONE_AFTER,
                crate::instances::GONE_AFTER,
            )
            .await?;
        Ok(self.layer_of(env, &reports))
    }

    /// [`App::env_layer`] inside a write, on its connection.
    pub(crate) async fn env_layer_in(
        &self,
        tx: &mut WriteTx,
        env: &Env,
    ) -> Result<EnvLayer<'_>, AppError> {
        let reports = tx
            .instances(
                Some(env.as_str()),
                crate::instances::GONE_AFTER,
                crate::instances::GONE_AFTER,
            )
            .await?;
        Ok(self.layer_of(env, &reports))
    }

    fn layer_of(&self, env: &Env, reports: &[InstanceReport]) -> EnvLayer<'_> {
        let layers: Vec<_> = reports.iter().map(|r| &r.env_layer).collect();
        let (reported, drift) = reported_layer(&self.flags.load(), &layers);
        let own = self.process_env.as_ref() == Some(env);
        // The master switch: this process's own for its env; the one the env's
        // processes agree on for another; this process's when they report none or
        // disagree (nothing better is known).
        let master = if own || reports.is_empty() || drift.iter().any(|d| d.key == MASTER_KEY) {
            self.env_snapshot.master_switch()
        } else {
            reported.master_switch()
        };
        let snapshot = if own {
            Cow::Borrowed(&self.env_snapshot)
        } else {
            Cow::Owned(reported)
        };
        EnvLayer {
            snapshot,
            master,
            drift,
        }
    }
}

/// One env's variables, and where its live processes disagree about them.
pub(crate) struct EnvLayer<'a> {
    pub(crate) snapshot: Cow<'a, EnvSnapshot>,
    /// Whether DB rows decide values in this env.
    pub(crate) master: MasterSwitch,
    pub(crate) drift: Vec<Drift>,
}
