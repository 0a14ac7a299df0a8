//! vexil-app's use cases against real databases: every test runs on a fresh SQLite
//! file and a fresh PostgreSQL database (`both!`). The code scan needs no database;
//! its tests run on real directories.

mod account;
mod audit_integrity;
mod audit_log;
mod code_reads;
mod code_scan;
mod deprecation;
mod doctor;
mod elevation;
mod flip;
mod instances;
mod promotion;
mod reconcile;
mod sign_in;
mod stale;
mod token;
mod totp;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use vexil_app::{
    Actor, Admin, App, AppError, Elevation, Flip, Flipped, SecretKey, StepUp, TotpCode, code_at,
};
use vexil_core::{Env, EnvSnapshot, Envs, FlagKey, Risk, Role};
use vexil_store::Backend;
use vexil_testkit::{TestClock, TestDb, example_flags};

pub(crate) use vexil_testkit::both;

/// An `App` on a fresh database, with the example flags file, belonging to staging,
/// with `variables` as its process environment.
pub(crate) struct TestApp {
    pub(crate) app: App,
    pub(crate) clock: Arc<TestClock>,
    /// Holds the database until the test ends.
    _test_db: TestDb,
}

impl TestApp {
    pub(crate) async fn new(backend: Backend, variables: &[(&str, &str)]) -> TestApp {
        TestApp::on(TestDb::new(backend).await, variables)
    }

    /// An `App` on `test_db`.
    pub(crate) fn on(test_db: TestDb, variables: &[(&str, &str)]) -> TestApp {
        let flags = example_flags();
        let clock = Arc::new(TestClock::fixed());
        let app = App::new(
            test_db.db.clone(),
            flags,
            Envs::runbook(),
            Some(Env::STAGING),
            EnvSnapshot::capture(variables.iter().copied()),
            clock.clone(),
        )
        .with_secret_key(SecretKey::generate());
        TestApp {
            app,
            clock,
            _test_db: test_db,
        }
    }

    /// The same app, keeping `view` current with its own flips.
    pub(crate) fn with_view(mut self, view: vexil::Flags) -> TestApp {
        self.app = self.app.with_view(view);
        self
    }

    /// Another `App` on the same database through a pool of its own, as another
    /// server process would have.
    pub(crate) async fn another(&self) -> App {
        let db = vexil_store::Db::connect_existing(self._test_db.url())
            .await
            .unwrap();
        App::new(
            db,
            example_flags(),
            Envs::runbook(),
            Some(Env::STAGING),
            EnvSnapshot::default(),
            self.clock.clone(),
        )
    }

    /// The database's URL, for processes of its own.
    pub(crate) fn url(&self) -> String {
        self._test_db.url_string()
    }

    /// Runs `sql` outside vexil, as an operator with database access would.
    pub(crate) async fn execute(&self, sql: &str) {
        self._test_db.execute(sql).await.unwrap();
    }

    /// [`TestApp::execute`], returning the database's refusal.
    pub(crate) async fn try_execute(&self, sql: &str) -> Result<u64, String> {
        self._test_db.execute(sql).await
    }

    /// Creates the account and returns it as an actor.
    pub(crate) async fn account(&self, name: &str, role: Role) -> Actor {
        let password = SecretString::from("correct horse battery staple");
        self.app
            .add_user(Admin::Cli, name, role, &password)
            .await
            .unwrap();
        self.app.actor(name).await.unwrap()
    }
}

/// `text` as a flag key, for the length of the test.
pub(crate) fn key(text: &str) -> &'static FlagKey {
    Box::leak(Box::new(FlagKey::parse(text).unwrap()))
}

/// `text` as one of the runbook's envs, for the length of the test.
pub(crate) fn env(text: &str) -> &'static Env {
    Box::leak(Box::new(Envs::runbook().parse(text).unwrap()))
}

/// `text` as a TOTP code.
pub(crate) fn code(text: &str) -> TotpCode {
    TotpCode::new(text).unwrap()
}

/// An elevation of `actor`, made as every door makes one: TOTP enrolled (afresh, so
/// no earlier code of this step stands in the way) and the code of now given.
pub(crate) async fn elevate(app: &App, actor: &Actor) -> Elevation {
    let uri = app.enrol_totp(Admin::Cli, actor.name()).await.unwrap();
    let now = u64::try_from(app.now().timestamp()).unwrap();
    let code = TotpCode::new(&code_at(uri.expose_secret(), now).unwrap()).unwrap();
    app.elevate(actor, &code, "test").await.unwrap()
}

/// Flips as `actor`, elevating first where the flag needs it.
pub(crate) async fn flip_as(
    app: &App,
    actor: &Actor,
    flip: &Flip<'_>,
) -> Result<Flipped, AppError> {
    let high = app
        .flags()
        .get(flip.flag.as_str())
        .is_some_and(|decl| decl.risk() == Risk::High);
    if high {
        let elevation = elevate(app, actor).await;
        app.flip(actor, flip, StepUp::Held(&elevation)).await
    } else {
        app.flip(actor, flip, StepUp::None).await
    }
}
