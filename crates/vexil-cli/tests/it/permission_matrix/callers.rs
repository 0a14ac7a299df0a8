//! The permission table's world (one SQLite database, a server on a loopback port
//! with a test clock, the real binary) and its callers: who each column is on each
//! door, and the one request a cell sends.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vexil_app::{Admin, App, SecretKey, code_at};
use vexil_core::audit::Via;
use vexil_core::{Clock, EnvSnapshot, Envs, Role};
use vexil_server::{ApiConfig, ConsoleConfig, ServerState};
use vexil_store::Backend;
use vexil_testkit::{Run, TestClock, TestDb};

use super::Risk;
use super::cells::Cell;
use super::prepared::{Step, confirmation};
use crate::site::Site;

pub(crate) const PASSWORD: &str = "correct horse battery";

/// No soak: a promotion cell may approve at once (the CLI reads the real clock).
const FLAGS: &str = "\
dark_mode:
  default: false
  soak_period_hours: 0
  description: Dark theme.
  risk: low
search_typo_tolerance:
  default: true
  soak_period_hours: 0
  description: Fuzzy search.
  risk: medium
new_checkout:
  default: false
  soak_period_hours: 0
  description: The new checkout.
  risk: high
";

/// The accounts acting in columns 3 to 6.
pub(crate) const ROLE_ACCOUNTS: [&str; 4] = ["reader", "helper", "ops1", "admin"];

pub(crate) struct World {
    site: Site,
    pub(crate) app: Arc<App>,
    clock: Arc<TestClock>,
    pub(crate) base: String,
    /// API tokens by account name; `revoked` is ops2's, revoked.
    tokens: std::collections::HashMap<&'static str, String>,
    pub(crate) revoked: String,
    /// root's TOTP URI (the console's and the API's elevated caller).
    root_totp: String,
    /// The CLI's elevated callers, one per risk (the CLI reads the real clock, and a
    /// code is accepted once per account), and the one that promotes.
    cli_roots: Vec<(Risk, String)>,
    cli_promoter: String,
    /// The elevated caller of `vexil import` (its high-risk cell runs right after
    /// the high-risk flip's, within the same 30 s step).
    cli_importer: String,
    /// A client key for prod, and a revoked one.
    pub(crate) client_key: String,
    pub(crate) revoked_client_key: String,
    pub(crate) fresh: std::sync::atomic::AtomicUsize,
    _test_db: TestDb,
}

impl World {
    pub(crate) async fn new() -> World {
        let test_db = TestDb::new(Backend::Sqlite).await;
        let mut site = Site::new(test_db.url_string());
        let flags_file = site.dir.write("feature_flags.yaml", FLAGS);
        let key = SecretKey::generate();
        site.secret_key = Some(key.to_hex().expose_secret().to_owned());
        let clock = Arc::new(TestClock::at(Utc::now()));
        let envs = Envs::runbook();
        let master = vec![("FLAG_CONSOLE_FEATURE_FLAGS_DB".to_owned(), "1".to_owned())];
        let app = App::new(
            test_db.db.clone(),
            vexil::read_flag_set(&flags_file).unwrap(),
            envs.clone(),
            Some(envs.parse("prod").unwrap()),
            EnvSnapshot::capture(master),
            clock.clone(),
        )
        .with_secret_key(key);
        let password = SecretString::from(PASSWORD);
        let add = |name: &'static str, role| {
            let app = &app;
            let password = &password;
            async move {
                app.add_user(Admin::Cli, name, role, password)
                    .await
                    .unwrap()
            }
        };
        for (name, role) in [
            ("reader", Role::Readonly),
            ("helper", Role::Support),
            ("ops1", Role::Ops),
            ("ops2", Role::Ops),
            ("admin", Role::Superadmin),
            ("root", Role::Superadmin),
            ("gone_api", Role::Ops),
            ("gone_cli", Role::Ops),
            ("root_low", Role::Superadmin),
            ("root_medium", Role::Superadmin),
            ("root_high", Role::Superadmin),
            ("root_promote", Role::Superadmin),
            ("root_import", Role::Superadmin),
        ] {
            add(name, role).await;
        }
        let totp = |name: &'static str| {
            let app = &app;
            async move {
                app.enrol_totp(Admin::Cli, name)
                    .await
                    .unwrap()
                    .expose_secret()
                    .to_owned()
            }
        };
        let root_totp = totp("root").await;
        let mut cli_roots = Vec::new();
        for (risk, name) in [
            (Risk::Low, "root_low"),
            (Risk::Medium, "root_medium"),
            (Risk::High, "root_high"),
        ] {
            cli_roots.push((risk, totp(name).await));
        }
        let cli_promoter = totp("root_promote").await;
        let cli_importer = totp("root_import").await;
        let mut tokens = std::collections::HashMap::new();
        for name in [
            "reader", "helper", "ops1", "admin", "root", "gone_api", "ops2",
        ] {
            let (_, token) = app.create_token(Admin::Cli, name).await.unwrap();
            tokens.insert(name, token.expose_secret().to_owned());
        }
        let revoked_id = app
            .tokens()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.user_name == "ops2")
            .unwrap()
            .id;
        app.revoke_token(Admin::Cli, revoked_id).await.unwrap();
        app.disable_user(Admin::Cli, "gone_api").await.unwrap();
        app.disable_user(Admin::Cli, "gone_cli").await.unwrap();
        let revoked = tokens["ops2"].clone();
        let client_key = World::new_client_key(&app).await.1;
        let (gone, revoked_client_key) = World::new_client_key(&app).await;
        app.revoke_client_key(Admin::Cli, Via::Cli, gone)
            .await
            .unwrap();

        let console = ConsoleConfig {
            sign_in_attempts_per_minute: std::num::NonZeroU32::new(10_000).unwrap(),
            account_attempts_per_minute: std::num::NonZeroU32::new(10_000).unwrap(),
            ..ConsoleConfig::default()
        };
        let api = ApiConfig {
            requests_per_second: 0,
            ..ApiConfig::default()
        };
        let state = ServerState::with_api(Arc::new(app), flags_file, console, api);
        let app = state.app.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(vexil_server::serve(listener, state, std::future::pending()));
        World {
            site,
            app,
            clock,
            base: format!("http://{address}"),
            tokens,
            revoked,
            root_totp,
            cli_roots,
            cli_promoter,
            cli_importer,
            client_key,
            revoked_client_key,
            fresh: std::sync::atomic::AtomicUsize::new(0),
            _test_db: test_db,
        }
    }

    /// A new client key for prod's `perm-web`: its id and the key.
    pub(crate) async fn new_client_key(app: &App) -> (i64, String) {
        let app_name = vexil_core::AppName::parse("perm-web").unwrap();
        let (id, key) = app
            .create_client_key(Admin::Cli, Via::Cli, &vexil_core::Env::PROD, &app_name)
            .await
            .unwrap();
        (id, key.expose_secret().to_owned())
    }

    /// Runs `sql` on the world's database, as an operator with database access would.
    pub(crate) async fn execute(&self, sql: &str) {
        self._test_db.execute(sql).await.unwrap();
    }

    pub(crate) fn flag(risk: Risk) -> &'static str {
        match risk {
            Risk::Any | Risk::Low => "dark_mode",
            Risk::Medium => "search_typo_tolerance",
            Risk::High => "new_checkout",
        }
    }

    /// The flag's value in prod now.
    pub(crate) async fn value(&self, flag: &str) -> bool {
        let prod = self.app.envs().parse("prod").unwrap();
        let states = self.app.flag_states(Some(&prod)).await.unwrap();
        states.states.iter().find(|s| s.key == flag).unwrap().value
    }

    /// A TOTP code for root that has not been used: the clock moves a step on first.
    pub(crate) fn next_root_code(&self) -> String {
        self.clock.advance(TimeDelta::seconds(31));
        let at = u64::try_from(self.clock.now().timestamp()).unwrap();
        code_at(&self.root_totp, at).unwrap()
    }

    pub(crate) async fn cli(&self, command: &str, cell: &Cell, flag: &str, id: Option<i64>) -> Run {
        let mut args: Vec<String> = command.split(' ').map(str::to_owned).collect();
        let mut stdin = None;
        match command {
            "promotion mark" | "promotion approve" | "promotion promote" | "promotion reject" => {
                args.push(id.map_or_else(|| flag.to_owned(), |id| id.to_string()));
                let actor = match cell.caller {
                    0 => None,
                    1 => Some("gone_cli"),
                    3..=6 => Some(ROLE_ACCOUNTS[cell.caller - 3]),
                    _ => Some("root_promote"),
                };
                if let Some(actor) = actor {
                    args.extend(["--as".into(), actor.into()]);
                }
                if command == "promotion reject" {
                    args.extend(["--reason".into(), "a permission cell".into()]);
                }
                if command == "promotion promote" {
                    if let Some(phrase) = confirmation(flag_risk(cell.risk), flag) {
                        args.extend(["--confirm".into(), phrase]);
                    }
                    if cell.caller == 7 {
                        let now = u64::try_from(Utc::now().timestamp()).unwrap();
                        args.extend(["--totp".into(), code_at(&self.cli_promoter, now).unwrap()]);
                    }
                }
            }
            "flip" | "reconcile" | "import" => {
                if command == "flip" {
                    let on = !self.value(flag).await;
                    args.extend([flag.into(), "--env".into(), "prod".into()]);
                    args.push(if on { "--on" } else { "--off" }.into());
                } else if command == "import" {
                    // The other value, over whatever row there is: a real change.
                    let on = !self.value(flag).await;
                    let variable = format!("FLAG_{}", flag.to_uppercase());
                    stdin = Some(format!("{variable}={}\n", u8::from(on)));
                    args.extend(["--env", "prod", "--from", "-", "--overwrite"].map(String::from));
                } else {
                    // No process of this world runs off its rows: an allowed caller
                    // reaches the use case and is told there is nothing to reconcile.
                    args.extend(["--flip".into(), flag.into(), "--env".into(), "prod".into()]);
                    args.extend(["--reason".into(), "a permission cell".into()]);
                }
                let actor = match cell.caller {
                    0 => None,
                    1 => Some("gone_cli".to_owned()),
                    3..=6 => Some(ROLE_ACCOUNTS[cell.caller - 3].to_owned()),
                    7 if command == "import" => {
                        let now = u64::try_from(Utc::now().timestamp()).unwrap();
                        args.extend(["--totp".into(), code_at(&self.cli_importer, now).unwrap()]);
                        Some("root_import".to_owned())
                    }
                    7 => {
                        let (_, uri) = self
                            .cli_roots
                            .iter()
                            .find(|(r, _)| *r == cell.risk)
                            .unwrap();
                        let now = u64::try_from(Utc::now().timestamp()).unwrap();
                        args.extend(["--totp".into(), code_at(uri, now).unwrap()]);
                        Some(format!("root_{}", World::risk_name(cell.risk)))
                    }
                    _ => unreachable!("no CLI caller {}", cell.caller),
                };
                if let Some(actor) = actor {
                    args.extend(["--as".into(), actor]);
                }
            }
            "user add" => {
                args.extend(["newbie".into(), "--role".into(), "ops".into()]);
                stdin = Some(format!("{PASSWORD}\n"));
            }
            "user set-role" => args.extend(["newbie".into(), "readonly".into()]),
            "user totp" | "user disable" => args.push("newbie".into()),
            "token create" => args.push("ops1".into()),
            "client-key create" => args.extend([
                "--env".into(),
                "prod".into(),
                "--app".into(),
                "perm-cli".into(),
            ]),
            "client-key revoke" => args.push(id.expect("a key prepared").to_string()),
            "token revoke" => {
                let tokens = self.app.tokens().await.unwrap();
                let live = tokens
                    .iter()
                    .find(|t| t.revoked_at.is_none() && t.user_name == "ops1")
                    .unwrap();
                args.push(live.id.to_string());
            }
            _ => {}
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let site = &self.site;
        match stdin {
            Some(input) => site.run_with_stdin(&args, &input),
            None => site.run(&args),
        }
    }

    fn risk_name(risk: Risk) -> &'static str {
        match risk {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Any => "any",
        }
    }

    // ---- the API ----

    pub(crate) fn api_client(&self, caller: usize) -> reqwest::Client {
        let token = match caller {
            0 => None,
            1 => Some(self.tokens["gone_api"].clone()),
            2 => Some(self.revoked.clone()),
            3..=6 => Some(self.tokens[ROLE_ACCOUNTS[caller - 3]].clone()),
            7 => Some(self.tokens["root"].clone()),
            8 => Some(self.client_key.clone()),
            _ => Some(self.revoked_client_key.clone()),
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    pub(crate) async fn api(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        cell: &Cell,
        flag: &str,
        id: Option<i64>,
    ) -> (u16, Value) {
        let path = path
            .replace("{key}", flag)
            .replace("{id}", &id.unwrap_or_default().to_string());
        let url = format!("{}{path}", self.base);
        let promotion = Step::of(cell.what);
        let json_post = |body: Value| {
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_string())
        };
        let request = if path.starts_with("/ofrep/") && method == "POST" {
            json_post(json!({"context": {"targetingKey": "a permission cell"}}))
        } else if path == "/sdk/v1/report" {
            json_post(json!({
                "instance": "perm", "host": "cell", "pid": 1, "language": "rust",
                "version": "0.1.0", "started_at": "2026-12-01T00:00:00Z",
                "master_switch": "on", "vars": {}, "applied": {}
            }))
        } else if path == "/api/v1/client-keys" && method == "POST" {
            json_post(json!({"env": "prod", "app": "perm-api"}))
        } else if path.ends_with("/revoke") && path.contains("client-keys") {
            json_post(json!({}))
        } else if method == "GET" && (path.ends_with("/stream") || path.ends_with("/events")) {
            // An event stream never ends: its status and headers say all.
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers().get("content-type").cloned();
            if status == 200 {
                assert_eq!(content_type.unwrap(), "text/event-stream", "{path}");
                return (status, Value::Null);
            }
            return (status, response.json_value().await);
        } else if method == "POST" && promotion.is_some() {
            let mut body = json!({});
            if promotion == Some(Step::Promote) {
                body["confirmation"] = json!(confirmation(flag_risk(cell.risk), flag));
                if cell.caller == 7 {
                    body["totp"] = json!(self.next_root_code());
                }
            }
            if promotion == Some(Step::Reject) {
                body["reason"] = json!("a permission cell");
            }
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
        } else if method == "POST" {
            let from = self.value(flag).await;
            let mut body = json!({"env": "prod", "from": from, "to": !from});
            if cell.caller == 7 {
                body["totp"] = json!(self.next_root_code());
            }
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
        } else if path.starts_with("/api/v1/flags") {
            client.get(format!("{url}?env=prod"))
        } else {
            client.get(url)
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json_value().await;
        (status, body)
    }
}

pub(crate) trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// The flag risk a row's risk stands for (`Any` acts on the low-risk flag).
pub(crate) fn flag_risk(risk: Risk) -> vexil_core::Risk {
    match risk {
        Risk::Any | Risk::Low => vexil_core::Risk::Low,
        Risk::Medium => vexil_core::Risk::Medium,
        Risk::High => vexil_core::Risk::High,
    }
}
