//! `vexil serve`: the console and API server. It migrates the database (unless
//! `--no-migrate`: a runtime role that cannot change the schema), refuses to
//! start on an invalid flags file (printing every error as `vexil check` does), binds
//! `VEXIL_BIND`, and then:
//!
//! - SIGHUP reads the flags file again; an invalid one keeps the last valid set and
//!   says why;
//! - SIGTERM or Ctrl-C stops accepting connections and finishes the requests in
//!   flight before exiting 0.
//!
//! Its own view of its env (`VEXIL_ENV`) is a `vexil::Flags` handle, which its flips
//! refresh at once.
//!
//! `--demo` instead serves a throw-away SQLite database in a temporary directory
//! (removed at exit) with the example flags file and one account per role, whose
//! random passwords and the superadmin's TOTP enrolment URI it prints once.
//!
//! It logs through `tracing` to stderr, as text or as JSON lines
//! (`VEXIL_LOG_FORMAT=json`). `--demo` also prints an API token for the ops account and
//! a client key for prod.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use vexil_core::env_var::MASTER_SWITCH;
use vexil_core::{Envs, FlagSet};
use vexil_server::{ApiConfig, ConnectionConfig, ConsoleConfig, SdkConfig, ServerState};

use crate::cli::{GlobalArgs, LogFormat, ServeArgs};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<Outcome> {
    init_logs(args.log_format);
    // `--demo`: everything in a directory that lives as long as the server.
    let (demo_dir, global) = demo(global, args.demo)?;
    let global = &global;
    let source = config::flags_source(global);
    let bytes = config::read_flags_file(&global.flags, &source)?;
    let flags = match FlagSet::parse(&source, &bytes) {
        Ok(flags) => flags,
        Err(errors) => {
            for line in errors.lines() {
                output::diagnostic(line);
            }
            output::diagnostic(format_args!(
                "error: not serving: the flags file {source} is invalid"
            ));
            return Ok(Outcome::Refused);
        }
    };
    let app = app(global, args, flags).await?;
    if demo_dir.is_some() {
        demo_accounts(&app).await?;
    }
    let (console, api, sdk) = settings(args, app.envs())?;
    let state = ServerState::with_api(Arc::new(app), global.flags.clone(), console, api)
        .with_sdk(sdk)
        .with_connections(connections(args));

    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    output::diagnostic(format_args!("vexil listening on http://{address}"));
    reload_on_hangup(state.clone(), source)?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        output::diagnostic("vexil: stopping; finishing the requests in flight");
    };
    vexil_server::serve(listener, state, shutdown)
        .await
        .context("the server stopped")?;
    if let Some(dir) = demo_dir {
        remove_demo_dir(dir.keep()).await;
    }
    Ok(Outcome::Success)
}

/// Logs from the library and the server (the database going down, reloads) go to
/// stderr; `RUST_LOG` narrows or widens them.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        // One JSON object per line, with the request's span (its id) in each.
        LogFormat::Json => logs.json().with_current_span(true).try_init(),
    };
}

/// With `--demo`, a temporary directory holding the example flags file and a fresh
/// SQLite database, and the settings pointed at them (prod by default).
fn demo(
    global: &GlobalArgs,
    demo: bool,
) -> anyhow::Result<(Option<tempfile::TempDir>, GlobalArgs)> {
    let mut global = global.clone();
    if !demo {
        return Ok((None, global));
    }
    // Its owner's only: the database in it holds the demo's password hashes.
    let dir = tempfile::Builder::new()
        .prefix("vexil-demo-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()?;
    let flags_file = dir.path().join("feature_flags.yaml");
    std::fs::write(&flags_file, DEMO_FLAGS)?;
    global.flags = flags_file;
    global.database_url = format!("sqlite://{}", dir.path().join("vexil.db").display());
    global.process_env.get_or_insert_with(|| "prod".to_owned());
    output::diagnostic(format_args!(
        "demo: a throw-away database in {} (removed when the server stops)",
        dir.path().display()
    ));
    Ok((Some(dir), global))
}

/// The database migrated (or, with `--no-migrate`, checked), and the `App` over it:
/// its windows, its own view of its env, and the secret key.
async fn app(
    global: &GlobalArgs,
    args: &ServeArgs,
    flags: FlagSet,
) -> anyhow::Result<vexil_app::App> {
    let db = config::open_database(global).await?;
    if args.no_migrate {
        // A runtime role cannot migrate; an old schema is the owner's to upgrade.
        db.check_migrated().await?;
    } else {
        let report = db.migrate().await?;
        for (version, description) in &report.applied {
            output::diagnostic(format_args!(
                "{}: applied migration {version:04} {description}",
                db.url()
            ));
        }
    }
    let envs = Envs::runbook();
    let process_env = config::process_env(global, &envs)?;
    let mut app = vexil_app::App::new(
        db,
        flags.clone(),
        envs,
        process_env.clone(),
        flag_env(args.demo),
        Arc::new(config::SystemClock),
    )
    .with_promotion_windows(config::promotion_windows()?)
    .with_elevation_window(Duration::from_secs(args.elevation_minutes * 60));
    if let Some(env) = &process_env {
        let view = vexil::Flags::builder()
            .env(env.as_str())
            .flag_set(flags)
            .database_url(global.database_url.clone())
            .application(vexil_app::VEXIL_SERVE_APP)
            .start()
            .await?;
        app = app.with_view(view);
    }
    // TOTP secrets are sealed with this key: VEXIL_SECRET_KEY, or for SQLite the key
    // file beside the database. Without one, TOTP enrolment and elevation say how
    // to set it.
    if let Some(key) = config::secret_key(app.db())? {
        app = app.with_secret_key(key);
    }
    Ok(app)
}

/// This process's `FLAG_*` variables. The demo turns the master switch on unless the
/// shell sets it: a first flip in the demo then changes what runs, as in a team that
/// has finished the runbook's rollout.
fn flag_env(demo: bool) -> vexil_core::EnvSnapshot {
    let mut vars: Vec<(String, String)> = config::process_vars().collect();
    if demo {
        // Captured after the shell's own: the first of a name counts.
        vars.push((MASTER_SWITCH.to_owned(), "1".to_owned()));
    }
    vexil_core::EnvSnapshot::capture(vars)
}

/// The console's, the API's and the evaluation plane's settings from the flags.
fn settings(
    args: &ServeArgs,
    envs: &Envs,
) -> anyhow::Result<(ConsoleConfig, ApiConfig, SdkConfig)> {
    let require_reason = args
        .require_reason
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            envs.parse(name)
                .map_err(|e| anyhow::anyhow!("VEXIL_REQUIRE_REASON / --require-reason: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let console = ConsoleConfig {
        require_reason,
        secure_cookies: args
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://")),
        idle_timeout: Duration::from_secs(args.session_idle_minutes * 60),
        absolute_timeout: Duration::from_secs(args.session_max_hours * 3600),
        ..ConsoleConfig::default()
    };
    let api = ApiConfig {
        requests_per_second: args.api_rate_limit,
        token_ttl: Duration::from_secs(args.token_cache_seconds),
        ..ApiConfig::default()
    };
    let sdk = SdkConfig {
        requests_per_second: args.sdk_rate_limit,
        queue: usize::try_from(args.sdk_queue).unwrap_or(usize::MAX),
        write_timeout: Duration::from_secs(args.write_timeout_seconds),
        public_url: args.public_url.clone(),
        ..SdkConfig::default()
    };
    Ok((console, api, sdk))
}

/// The connections' timeouts and cap (docs/deploy.md, "Connections").
fn connections(args: &ServeArgs) -> ConnectionConfig {
    ConnectionConfig {
        header_timeout: Duration::from_secs(args.header_timeout_seconds),
        request_timeout: Duration::from_secs(args.request_timeout_seconds),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout_seconds),
    }
}

/// SIGHUP reads the flags file again; an invalid one keeps the last valid set.
fn reload_on_hangup(state: ServerState, source: String) -> anyhow::Result<()> {
    let mut hangups = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match state.reload().await {
                Ok(reloaded) => {
                    output::diagnostic(format_args!("reloaded {source}: {} flags", reloaded.flags));
                }
                Err(error) => {
                    output::diagnostic(format_args!(
                        "error: {error}; keeping the last valid flags"
                    ));
                }
            }
        }
    });
    Ok(())
}

/// Deletes the demo's directory. Background work (the change feed's connection,
/// the view's refresh, SQLite's worker threads) winds down on other threads after
/// the server stops, and may still touch the database's `-wal`/`-shm` files for a
/// moment: a removal racing it fails with "directory not empty", so it is tried
/// again for up to two seconds, and a last failure is said, never ignored.
async fn remove_demo_dir(path: std::path::PathBuf) {
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => return,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) if attempts < 40 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => {
                output::diagnostic(format_args!(
                    "warning: could not remove the demo directory {}: {error}",
                    path.display()
                ));
                return;
            }
        }
    }
}

/// The example flags file, built in, so that `--demo` runs from any directory.
const DEMO_FLAGS: &str = include_str!("../../../../examples/feature_flags.yaml");

/// One account per role, with a random password printed once, TOTP for the
/// superadmin (its enrolment URI printed once), an API token for the ops account and
/// a client key for prod: who a first-time user signs in as, what a first API call
/// sends, and what a first application (or OpenFeature's OFREP provider) follows with.
async fn demo_accounts(app: &vexil_app::App) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    use vexil_core::Role;
    output::line("demo accounts (the passwords are shown once):")?;
    for (name, role) in [
        ("reader", Role::Readonly),
        ("helpdesk", Role::Support),
        ("operator", Role::Ops),
        ("root", Role::Superadmin),
    ] {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
        let password = secrecy::SecretString::from(hex::encode(bytes));
        app.add_user(vexil_app::Admin::Cli, name, role, &password)
            .await?;
        output::line(format_args!(
            "  {name:<9} {:<11} {}",
            role.as_str(),
            password.expose_secret()
        ))?;
    }
    let uri = app.enrol_totp(vexil_app::Admin::Cli, "root").await?;
    output::line(format_args!(
        "root's TOTP (add it to an authenticator app): {}",
        uri.expose_secret()
    ))?;
    let (_, token) = app.create_token(vexil_app::Admin::Cli, "operator").await?;
    output::line(format_args!(
        "operator's API token (Authorization: Bearer …): {}",
        token.expose_secret()
    ))?;
    let app_name = vexil_core::AppName::parse("demo-web")?;
    let (_, key) = app
        .create_client_key(
            vexil_app::Admin::Cli,
            vexil_core::audit::Via::Cli,
            &vexil_core::Env::PROD,
            &app_name,
        )
        .await?;
    output::line(format_args!(
        "a client key for prod's applications (/sdk/v1, /ofrep/v1): {}",
        key.expose_secret()
    ))?;
    Ok(())
}
