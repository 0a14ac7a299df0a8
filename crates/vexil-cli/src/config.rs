//! Everything a command needs from its surroundings: the process environment (the one
//! place in the binary that reads it by hand), the flags file, the database and the
//! clock, assembled into an `App`.
//!
//! clap reads the settings it declares (`VEXIL_FLAGS`, `DATABASE_URL`, `VEXIL_ENV`).
//! What remains is the `FLAG_*` variables, captured once into an `EnvSnapshot`
//! (ARCHITECTURE.md, invariant 4).
//!
//! `SystemClock` is the binary's clock. `app` refuses an unmigrated database before any
//! command touches it; commands that need only the database (`user`, `token`,
//! `client-key`, `audit`) work with a missing or broken flags file. The secret key
//! comes from `VEXIL_SECRET_KEY`, or for SQLite from `<database>.key`, created with
//! mode 0600 and refused if others can read it.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::ExposeSecret;
use vexil_app::{App, SecretKey, StepUp, TotpCode};
use vexil_core::decl::MAX_FILE_BYTES;
use vexil_core::message::one_line;
use vexil_core::promotion::Windows;
use vexil_core::{Clock, Env, EnvSnapshot, Envs, FlagSet};
use vexil_store::{DatabaseUrl, Db};

use crate::cli::GlobalArgs;
use crate::output;

/// The `FLAG_*` variables of this process. Names or values that are not UTF-8 are
/// read lossily rather than aborting (`std::env::vars` would panic on them): a
/// mangled value is then reported as invalid, which is the truth.
pub(crate) fn flag_env() -> EnvSnapshot {
    EnvSnapshot::capture(process_vars())
}

/// This process's variables, each name and value read lossily.
pub(crate) fn process_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().map(|(name, value)| {
        (
            name.to_string_lossy().into_owned(),
            value.to_string_lossy().into_owned(),
        )
    })
}

/// Where the key that encrypts TOTP secrets comes from (64 hex characters).
const SECRET_KEY_VAR: &str = "VEXIL_SECRET_KEY";

/// The real clock, for the binary; tests pass `vexil-testkit`'s `TestClock` instead.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The flags file as the operator named it, escaped so it stays on one line.
pub(crate) fn flags_source(global: &GlobalArgs) -> String {
    one_line(&global.flags.display().to_string())
}

/// Reads the flags file, at most one byte past the limit, so that `--flags /dev/zero`
/// is refused as too large instead of filling memory.
pub(crate) fn read_flags_file(path: &Path, source: &str) -> anyhow::Result<Vec<u8>> {
    let hint = if path == Path::new("feature_flags.yaml") {
        " (set --flags PATH or VEXIL_FLAGS)"
    } else {
        ""
    };
    let context = || format!("cannot read flags file '{source}'{hint}");
    let file = std::fs::File::open(path).with_context(context)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(context)?;
    Ok(bytes)
}

/// The flags file, valid, or one line saying how to see what is wrong with it.
pub(crate) fn flag_set(global: &GlobalArgs) -> anyhow::Result<FlagSet> {
    let source = flags_source(global);
    let bytes = read_flags_file(&global.flags, &source)?;
    FlagSet::parse(&source, &bytes).map_err(|errors| {
        let first = errors.lines().next().unwrap_or_default();
        anyhow::anyhow!(
            "the flags file {source} has {} error(s), the first: {first}; run `vexil check` for all",
            errors.len()
        )
    })
}

/// The database, opened but not checked: `migrate` alone starts here.
pub(crate) async fn open_database(global: &GlobalArgs) -> anyhow::Result<Db> {
    let url = DatabaseUrl::parse(&global.database_url)?;
    warn_if_plain_text_possible(&url);
    // A command line is readable by every local user (`ps`); a process's environment
    // by its owner only.
    let from_environment =
        std::env::var_os("DATABASE_URL").is_some_and(|value| value == global.database_url.as_str());
    if url.has_password() && !from_environment {
        bail!(
            "--database-url {url} carries a password, which every user of this machine can read in `ps`: set DATABASE_URL in the environment instead (or use PostgreSQL's PGPASSWORD or ~/.pgpass and leave the password out)"
        );
    }
    let db = Db::connect(&url).await?;
    warn_if_readable(&url);
    Ok(db)
}

/// A PostgreSQL URL to another machine that names no `sslmode`: said once a process
/// (`seal` opens the database again), before connecting, so it shows even when the
/// connection fails. Only a warning: the operator may know the network, but the
/// default `prefer` falls back to plain text without a word (docs/deploy.md).
fn warn_if_plain_text_possible(url: &DatabaseUrl) {
    static SAID: std::sync::Once = std::sync::Once::new();
    let Some(host) = url.remote_host_without_sslmode() else {
        return;
    };
    SAID.call_once(|| {
        output::diagnostic(format_args!(
            "warning: the PostgreSQL server '{}' is not on this machine and DATABASE_URL names no sslmode: the default (prefer) falls back to plain text without a word; add ?sslmode=verify-full (or require), see docs/deploy.md",
            one_line(&host)
        ));
    });
}

/// A SQLite database (or its journal) that other local users can read: said, with
/// the command that mends it, as for the key file. Only a warning: the file is the
/// operator's, made before vexil made new files private (`Db::connect`).
fn warn_if_readable(url: &DatabaseUrl) {
    let Some(database) = url.sqlite_file() else {
        return;
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut path = database.clone().into_os_string();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            let shown = one_line(&path.display().to_string());
            output::diagnostic(format_args!(
                "warning: the database file '{shown}' can be read by other users (mode {:o}): it holds password hashes, sessions and the audit log; run `chmod 600 {shown}`",
                mode & 0o777
            ));
        }
    }
}

/// What a command needs beyond the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// The database only: account, token and audit commands work even when the flags
    /// file is missing or broken, or the key file cannot be read.
    Database,
    /// The flags file too (flags and flips).
    Flags,
    /// The flags file and the TOTP secret key (a flip with `--totp`).
    FlagsAndKey,
    /// The database and the TOTP secret key (`user totp`).
    Key,
    /// The flags file, and the database whatever its schema (`doctor`, whose job is
    /// to report an old schema rather than refuse it).
    FlagsAnySchema,
}

/// The env this process belongs to (`VEXIL_ENV` / `--process-env`), if it says.
pub(crate) fn process_env(global: &GlobalArgs, envs: &Envs) -> anyhow::Result<Option<Env>> {
    global
        .process_env
        .as_deref()
        .map(|name| envs.parse(name).context("VEXIL_ENV / --process-env"))
        .transpose()
}

/// Everything a use case needs, or the first reason it cannot run.
pub(crate) async fn app(global: &GlobalArgs, needs: Needs) -> anyhow::Result<App> {
    let flags = match needs {
        Needs::Flags | Needs::FlagsAndKey | Needs::FlagsAnySchema => flag_set(global)?,
        Needs::Database | Needs::Key => FlagSet::default(),
    };
    let envs = Envs::runbook();
    let process_env = process_env(global, &envs)?;
    let db = open_database(global).await?;
    if needs != Needs::FlagsAnySchema {
        db.check_migrated().await?;
    }
    let app = App::new(
        db.clone(),
        flags,
        envs,
        process_env,
        flag_env(),
        Arc::new(SystemClock),
    );
    // Every command that has the key uses it: to prove the audit rows it writes and
    // to check others' proofs (docs/audit-integrity.md). Only TOTP needs it, so only
    // there is a key that cannot be read an error.
    match secret_key(&db) {
        Ok(Some(key)) => Ok(app.with_secret_key(key)),
        Ok(None) => Ok(app),
        Err(error) if matches!(needs, Needs::FlagsAndKey | Needs::Key) => Err(error),
        Err(_) => Ok(app),
    }
}

/// Seals the audit log's new rows into its chain, best effort: a command's own work
/// is done and reported; `vexil serve` or the next command seals what this one
/// could not.
pub(crate) async fn seal(global: &GlobalArgs) {
    if let Ok(db) = open_database(global).await {
        let _ = db.seal_audit().await;
        db.close().await;
    }
}

/// Where a code typed at the CLI comes from, as its elevation audit row records it.
pub(crate) const CLI_ADDRESS: &str = "cli";

/// What a CLI command brings to a use case that may need elevation: its `--totp`
/// code, if given (a shell holds no elevation of its own).
pub(crate) fn step_up(code: Option<&TotpCode>) -> StepUp<'_> {
    StepUp::from_parts(code, None, CLI_ADDRESS)
}

/// `VEXIL_SECRET_KEY`; else, for SQLite, the key file beside the database (created with
/// mode 0600 on first use); else none, and TOTP says how to set one.
///
/// An environment variable only, never an option: a command line is readable by every
/// user of the machine (`ps`), a process's environment only by its owner.
pub(crate) fn secret_key(db: &Db) -> anyhow::Result<Option<SecretKey>> {
    if let Some(hex) = std::env::var_os(SECRET_KEY_VAR) {
        let hex = hex
            .into_string()
            .map_err(|_| vexil_app::AppError::BadSecretKey)?;
        return Ok(Some(SecretKey::from_hex(&hex)?));
    }
    let Some(database) = db.url().sqlite_file() else {
        return Ok(None);
    };
    let mut path = database.into_os_string();
    path.push(".key");
    let path = std::path::PathBuf::from(path);
    let shown = one_line(&path.display().to_string());
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mode = std::fs::metadata(&path)
                .with_context(|| format!("cannot read key file '{shown}'"))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                bail!(
                    "key file '{shown}' can be read by others (mode {:o}): run `chmod 600 {shown}`",
                    mode & 0o777
                );
            }
            Ok(Some(
                SecretKey::from_hex(&text).with_context(|| format!("key file '{shown}'"))?,
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Written whole to a private temporary file, then linked into place: a
            // reader never sees a half-written key, and of two first runs racing,
            // the second finds the first one's key and uses it.
            let key = SecretKey::generate();
            let mut temporary = path.clone().into_os_string();
            temporary.push(format!(".{}.tmp", std::process::id()));
            let temporary = std::path::PathBuf::from(temporary);
            let written = (|| -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temporary)?;
                writeln!(file, "{}", key.to_hex().expose_secret())?;
                file.sync_all()?;
                std::fs::hard_link(&temporary, &path)
            })();
            let _ = std::fs::remove_file(&temporary);
            match written {
                Ok(()) => Ok(Some(key)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => secret_key(db),
                Err(e) => Err(e).with_context(|| format!("cannot create key file '{shown}'")),
            }
        }
        Err(e) => Err(e).with_context(|| format!("cannot read key file '{shown}'")),
    }
}

/// `--since`/`--until`: RFC 3339, or a date meaning its midnight UTC.
pub(crate) fn parse_time(flag: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    vexil_core::parse_instant(text).map_err(|error| anyhow::anyhow!("{flag} {error}"))
}

/// The promotion rules of this deployment (docs/promotion.md#settings), from the environment only:
/// every process (`vexil serve` and the CLI) must apply the same ones, so they are
/// not options one command line could change.
///
/// - `VEXIL_PROMOTION_DISTINCT_APPROVER`: `1`/`true`/`on` (or `0`/`false`/`off`, the
///   default): the approver must not be the account that marked it.
/// - `VEXIL_PROMOTION_PENDING_DAYS` (1–90, default 7): a pending promotion expires
///   this long after its soak ended.
/// - `VEXIL_PROMOTION_APPROVAL_HOURS` (1–720, default 72): an approval expires this
///   long after it was given, if not promoted.
pub(crate) fn promotion_windows() -> anyhow::Result<Windows> {
    let defaults = Windows::default();
    let number =
        |name: &str, range: std::ops::RangeInclusive<i64>| -> anyhow::Result<Option<i64>> {
            let Some(raw) = std::env::var_os(name) else {
                return Ok(None);
            };
            let raw = raw.to_string_lossy();
            match raw.trim().parse::<i64>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => anyhow::bail!(
                    "{name} must be a whole number from {} to {}, not {}",
                    range.start(),
                    range.end(),
                    format_args!("'{}'", one_line(&raw))
                ),
            }
        };
    let distinct_approver = match std::env::var_os(DISTINCT_APPROVER_VAR) {
        None => defaults.distinct_approver,
        Some(raw) => {
            let raw = raw.to_string_lossy();
            vexil_core::env_var::parse_switch(&raw).ok_or_else(|| {
                anyhow::anyhow!(
                    "{DISTINCT_APPROVER_VAR} must be 1 or 0 (true/false, on/off), not {}",
                    format_args!("'{}'", one_line(&raw))
                )
            })?
        }
    };
    Ok(Windows {
        pending_after_soak: number("VEXIL_PROMOTION_PENDING_DAYS", 1..=90)?
            .map_or(defaults.pending_after_soak, TimeDelta::days),
        approval: number("VEXIL_PROMOTION_APPROVAL_HOURS", 1..=720)?
            .map_or(defaults.approval, TimeDelta::hours),
        distinct_approver,
    })
}

const DISTINCT_APPROVER_VAR: &str = "VEXIL_PROMOTION_DISTINCT_APPROVER";
