//! `TestConsole`: `serve` on a loopback port over a fresh database, with one account
//! per role and a test clock; `Browser`: a cookie-keeping HTTP client that does not
//! follow redirects, so each test sees every 303 it causes.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::TimeDelta;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use vexil_app::{Admin, App, SecretKey, code_at};
use vexil_core::{Clock, EnvSnapshot, Envs, Role};
use vexil_server::{ApiConfig, ConsoleConfig, SdkConfig, ServerState};
use vexil_store::{AuditFilter, AuditRow, Backend, Db};
use vexil_testkit::{TestClock, TestDb, audit_log, start_instance};

/// Every account's password in these tests.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// The flags: one per risk, and one whose description tries to inject a script.
pub(crate) const FLAGS: &str = "\
dark_mode:
  default: false
  description: Dark theme for the dashboard.
  risk: low
search_typo_tolerance:
  default: true
  description: Fuzzy search.
  risk: medium
new_checkout:
  default: false
  description: The new checkout flow.
  risk: high
legacy_banner:
  default: false
  description: \"<script>alert('x')</script> & friends\"
  risk: low
";

/// Two more flags with no soak, for promotion tests: one low-risk, one high.
pub(crate) const NO_SOAK_FLAGS: &str = "\
weekly_digest:
  default: false
  soak_period_hours: 0
  description: Weekly summary e-mail.
  risk: low
card_vault:
  default: false
  soak_period_hours: 0
  description: Card numbers in the new vault.
  risk: high
";

pub(crate) struct TestConsole {
    pub(crate) address: SocketAddr,
    pub(crate) state: ServerState,
    pub(crate) clock: Arc<TestClock>,
    test_db: TestDb,
    /// root's TOTP URI (superadmin, enrolled).
    pub(crate) root_totp: String,
    /// Audit rows written by the set-up (accounts, root's TOTP), left out of `audit`.
    setup_rows: usize,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub(crate) struct Options {
    pub(crate) config: ConsoleConfig,
    pub(crate) env_vars: Vec<(String, String)>,
    /// The database the server uses, if not the test database directly (a proxy).
    pub(crate) db: Option<Db>,
    pub(crate) api: ApiConfig,
    /// The flags file's text (`FLAGS` unless a test needs more).
    pub(crate) flags: String,
    pub(crate) sdk: SdkConfig,
    pub(crate) connections: vexil_server::ConnectionConfig,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            config: ConsoleConfig::default(),
            // DB rows count (the runbook's master switch, on).
            env_vars: vec![("FLAG_CONSOLE_FEATURE_FLAGS_DB".into(), "1".into())],
            db: None,
            api: ApiConfig::default(),
            flags: FLAGS.to_owned(),
            sdk: SdkConfig::default(),
            connections: vexil_server::ConnectionConfig::default(),
        }
    }
}

impl TestConsole {
    pub(crate) async fn start(backend: Backend) -> TestConsole {
        TestConsole::start_with(TestDb::new(backend).await, Options::default()).await
    }

    /// A console over `test_db`, with accounts reader (readonly), helper (support),
    /// ops1 (ops), admin (superadmin, no TOTP) and root (superadmin, TOTP).
    pub(crate) async fn start_with(test_db: TestDb, options: Options) -> TestConsole {
        let dir = tempfile::tempdir().unwrap();
        let flags_file = dir.path().join("feature_flags.yaml");
        std::fs::write(&flags_file, &options.flags).unwrap();
        let flags = vexil::read_flag_set(&flags_file).unwrap();
        let clock = Arc::new(TestClock::fixed());
        let envs = Envs::runbook();
        let process_env = envs.parse("prod").unwrap();
        let db = options.db.unwrap_or_else(|| test_db.db.clone());
        let app = App::new(
            db,
            flags,
            envs,
            Some(process_env),
            EnvSnapshot::capture(options.env_vars),
            clock.clone(),
        )
        .with_secret_key(SecretKey::generate());
        let password = SecretString::from(PASSWORD);
        for (name, role) in [
            ("reader", Role::Readonly),
            ("helper", Role::Support),
            ("ops1", Role::Ops),
            ("admin", Role::Superadmin),
            ("root", Role::Superadmin),
        ] {
            app.add_user(Admin::Cli, name, role, &password)
                .await
                .unwrap();
        }
        let root_totp = app
            .enrol_totp(Admin::Cli, "root")
            .await
            .unwrap()
            .expose_secret()
            .to_owned();
        let setup_rows = app
            .db()
            .audit_page(&AuditFilter {
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .len();
        let state = ServerState::with_api(Arc::new(app), flags_file, options.config, options.api)
            .with_sdk(options.sdk)
            .with_connections(options.connections);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(vexil_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        TestConsole {
            address,
            state,
            clock,
            test_db,
            root_totp,
            setup_rows,
            _dir: dir,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub(crate) fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{}", self.address),
        }
    }

    /// A browser signed in as `name`.
    pub(crate) async fn signed_in(&self, name: &str) -> Browser {
        let browser = self.browser();
        let page = browser.sign_in(name, PASSWORD).await;
        assert_eq!(page.status, 303, "{name} signs in: {}", page.body);
        browser
    }

    pub(crate) fn test_db(&self) -> &TestDb {
        &self.test_db
    }

    /// A live process of `env` (application `application`) linking the library
    /// with this console's flags file and these variables, reporting every 100 ms;
    /// returned once its first report is in.
    pub(crate) async fn live_instance(
        &self,
        env: &str,
        application: &str,
        vars: &[(&str, &str)],
    ) -> vexil::Flags {
        let flags = vexil::read_flag_set(&self.state.flags_file).unwrap();
        start_instance(
            vexil::Flags::builder()
                .env(env)
                .flag_set(flags)
                .env_vars(EnvSnapshot::capture(vars.iter().copied()))
                .database_url(self.test_db.url_string())
                .application(application),
        )
        .await
    }

    /// A new API token for `name`.
    pub(crate) async fn token(&self, name: &str) -> String {
        let (_, token) = self.state.app.create_token(Admin::Cli, name).await.unwrap();
        token.expose_secret().to_owned()
    }

    /// A new client key for `app`'s processes in `env`.
    pub(crate) async fn client_key(&self, env: &str, app: &str) -> String {
        let env = self.state.app.envs().parse(env).unwrap();
        let app = vexil_core::AppName::parse(app).unwrap();
        let (_, key) = self
            .state
            .app
            .create_client_key(Admin::Cli, vexil_core::audit::Via::Cli, &env, &app)
            .await
            .unwrap();
        key.expose_secret().to_owned()
    }

    /// An API client that sends `token`.
    pub(crate) fn api(&self, token: &str) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("http://{}", self.address),
            authorization: Some(format!("Bearer {token}")),
        }
    }

    /// The code root's authenticator shows now, `steps` 30-second steps from now.
    pub(crate) fn root_code(&self, steps: i64) -> String {
        let at = self.clock.now() + TimeDelta::seconds(30 * steps);
        code_at(&self.root_totp, u64::try_from(at.timestamp()).unwrap()).unwrap()
    }

    /// A code root's authenticator does not show now.
    pub(crate) fn wrong_root_code(&self) -> &'static str {
        if self.root_code(0) == "000000" {
            "111111"
        } else {
            "000000"
        }
    }

    /// How many console sessions are stored, by the database's own client.
    pub(crate) async fn session_rows(&self) -> usize {
        let out = self.test_db.client("SELECT count(*) FROM console_sessions");
        out.trim().parse().unwrap()
    }

    /// Every audit row since the set-up, newest first.
    pub(crate) async fn audit(&self) -> Vec<AuditRow> {
        let mut rows = audit_log(self.state.app.db()).await;
        rows.truncate(rows.len() - self.setup_rows);
        rows
    }

    /// The actions of the audit rows, oldest first, from the `skip`th on.
    pub(crate) async fn actions_since(&self, skip: usize) -> Vec<String> {
        let mut rows = self.audit().await;
        rows.reverse();
        rows.into_iter().skip(skip).map(|r| r.action).collect()
    }

    /// The DB row of `flag` in `env`: (value, updated_by).
    pub(crate) async fn row(&self, flag: &str, env: &str) -> Option<(bool, Option<String>)> {
        let rows = self.state.app.db().flag_rows().await.unwrap();
        rows.into_iter()
            .find(|r| r.flag_key == flag && r.env == env)
            .map(|r| (r.value, r.updated_by))
    }

    /// Stops the server (its streams end, requests in flight finish) and starts a new
    /// one on the same address over the same app: a restart, with a fresh hub and
    /// fresh caches.
    pub(crate) async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        let state = ServerState::with_api(
            self.state.app.clone(),
            self.state.flags_file.clone(),
            (*self.state.config).clone(),
            (*self.state.api).clone(),
        )
        .with_sdk(self.state.sdk_config().clone());
        let listener = TcpListener::bind(self.address).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.server = Some(tokio::spawn(vexil_server::serve(
            listener,
            state.clone(),
            async {
                let _ = stopped.await;
            },
        )));
        self.stop = Some(stop);
        self.state = state;
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
}

#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get("location")
            .map_or("", |v| v.to_str().unwrap())
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// The CSRF token of the first form on the page.
    pub(crate) fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[start..start + 64].to_owned()
    }

    /// The body with HTML's escapes undone, to compare messages as a person reads them.
    pub(crate) fn text(&self) -> String {
        self.body
            .replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&#60;", "<")
            .replace("&lt;", "<")
            .replace("&#62;", ">")
            .replace("&gt;", ">")
            .replace("&#38;", "&")
            .replace("&amp;", "&")
    }

    /// The page says `text` (compared with escapes undone).
    #[track_caller]
    pub(crate) fn assert_says(&self, text: &str) {
        assert!(
            self.text().contains(text),
            "{text:?} not said by the page ({}):\n{}",
            self.status,
            self.body
        );
    }

    #[track_caller]
    pub(crate) fn assert_contains(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "{text:?} not in the page ({}):\n{}",
            self.status,
            self.body
        );
    }
}

impl Browser {
    async fn page(response: reqwest::Response) -> Page {
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Browser::page(response).await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    pub(crate) async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Browser::page(request.send().await.unwrap()).await
    }

    pub(crate) async fn sign_in(&self, name: &str, password: &str) -> Page {
        self.sign_in_to(name, password, "").await
    }

    pub(crate) async fn sign_in_to(&self, name: &str, password: &str, next: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        let csrf = form.csrf();
        self.post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// The CSRF token of this browser's session, from a page that has one.
    pub(crate) async fn csrf(&self) -> String {
        self.get("/console/account").await.csrf()
    }

    /// A flip as the console's forms send it, confirmed and with a reason (what a
    /// prod flip needs) unless `extra` says otherwise: `confirm` or `reason` in
    /// `extra` replace these.
    pub(crate) async fn flip(
        &self,
        flag: &str,
        env: &str,
        from: bool,
        extra: &[(&str, &str)],
    ) -> Page {
        let mut form = vec![("confirm", "yes"), ("reason", "a test flip")];
        form.retain(|(name, _)| !extra.iter().any(|(given, _)| given == name));
        form.extend_from_slice(extra);
        self.flip_form(flag, env, from, &form).await
    }

    /// A flip with only the fields `extra` adds to the row's own (no confirmation,
    /// no reason unless given): what the flags list's button sends.
    pub(crate) async fn flip_form(
        &self,
        flag: &str,
        env: &str,
        from: bool,
        extra: &[(&str, &str)],
    ) -> Page {
        let csrf = self.csrf().await;
        let from = from.to_string();
        let to = (from == "false").to_string();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("env", env),
            ("from", &from),
            ("to", &to),
        ];
        form.extend_from_slice(extra);
        self.post(&format!("/console/flags/{flag}/flip"), &form)
            .await
    }
}

/// A JSON API client: each call sends the `Authorization` header it was made with.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) authorization: Option<String>,
}

/// An API answer: its status, headers and body (JSON, or a string if it was not).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: serde_json::Value,
}

impl Reply {
    /// The error code of an error answer.
    pub(crate) fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    pub(crate) fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// Asserts an error answer: its status, its code, and words of its message.
    #[track_caller]
    pub(crate) fn assert_error(&self, status: u16, code: &str, says: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{self:?}");
        assert!(self.message().contains(says), "{says:?} not in {self:?}");
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            "application/json",
            "{self:?}"
        );
    }
}

impl Api {
    pub(crate) fn without_token(&self) -> Api {
        Api {
            client: self.client.clone(),
            base: self.base.clone(),
            authorization: None,
        }
    }

    pub(crate) fn with_authorization(&self, value: &str) -> Api {
        Api {
            authorization: Some(value.to_owned()),
            ..self.without_token()
        }
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let request = match &self.authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// POSTs `body` as JSON text (sent as given, so that tests can send bad JSON).
    pub(crate) async fn post(&self, path: &str, body: &str) -> Reply {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        self.send(request).await
    }

    /// Flips `flag` in prod from `from`, with these extra JSON fields.
    pub(crate) async fn flip(&self, flag: &str, from: bool, extra: serde_json::Value) -> Reply {
        let mut body = serde_json::json!({"env": "prod", "from": from, "to": !from});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.post(&format!("/api/v1/flags/{flag}/flip"), &body.to_string())
            .await
    }
}
