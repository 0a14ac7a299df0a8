//! The command line's shape (docs/cli.md), as clap derive definitions.
//!
//! Every option that has an environment variable (docs/cli.md) takes it through clap's
//! `env`, so `--flags` and `VEXIL_FLAGS` are one setting with one precedence.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

// Paths from this file's directory: xtask includes it by path for docs/cli.md.
#[path = "cli/adoption.rs"]
mod adoption;
#[path = "cli/import.rs"]
pub(crate) mod import;

pub(crate) use adoption::{MapAdminArgs, MigrateArgs};
pub(crate) use import::ImportArgs;

/// vexil: see every feature flag, flip it safely, promote it from staging to prod,
/// and answer "who changed what, when".
// No `Debug` on the argument types: they hold the database URL, the secret key and a
// TOTP code, which must never reach a log.
#[derive(Parser)]
#[command(name = "vexil", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Settings every command reads.
#[derive(Args, Clone)]
pub(crate) struct GlobalArgs {
    /// The flags file: the canonical declarations of every flag.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "VEXIL_FLAGS",
        default_value = "feature_flags.yaml"
    )]
    pub(crate) flags: PathBuf,
    /// The database: sqlite://PATH (created on first use) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "DATABASE_URL",
        default_value = "sqlite://vexil.db",
        hide_env_values = true
    )]
    pub(crate) database_url: String,
    /// The env this process belongs to: its FLAG_* variables are that env's variables.
    #[arg(long, global = true, value_name = "ENV", env = "VEXIL_ENV")]
    pub(crate) process_env: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Validate the flags file: print a summary, or every error with its file:line:col.
    Check(JsonArgs),
    /// Apply the database migrations this vexil has and the database lacks; with
    /// --adopt, make an existing console database vexil's (docs/adopt.md).
    Migrate(MigrateArgs),
    /// The database's roles: the grants for a runtime role and a break-glass role.
    #[command(subcommand)]
    Db(DbCommand),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// List flags.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage client keys: what applications follow `vexil serve` with (one env and
    /// one application each; they read flags and report processes, nothing else).
    #[command(subcommand)]
    ClientKey(ClientKeyCommand),
    /// Flip a flag in one env: the break-glass path, audited like any flip.
    Flip(FlipArgs),
    /// Move an app's FLAG_* config into DB rows: `heroku config --json` output or a
    /// dotenv file, one audited row per flag, all or nothing (docs/import.md).
    Import(ImportArgs),
    /// Promote a flag from staging to prod: mark it, let it soak, approve, promote
    /// (or reject).
    #[command(subcommand)]
    Promotion(PromotionCommand),
    /// Read the audit log, newest first; `audit show ID` for one row and which live
    /// processes apply it yet.
    Audit(AuditArgs),
    /// Serve the console and the API (SIGHUP reloads the flags file; SIGTERM drains).
    Serve(ServeArgs),
    /// The live processes that use the vexil library: who, where, which env, and
    /// their FLAG_* variables as they parsed them.
    Instances(InstancesArgs),
    /// The runbook's deprecation table: for each flag and env, whether its FLAG_*
    /// variable is in use, dormant, safe to remove or removed, and why (vexil removes
    /// nothing).
    Deprecation(DeprecationArgs),
    /// The runbook's GA checklist and vexil's own health: each item passes or fails
    /// with its evidence (exit 0 only when none fails).
    Doctor(DoctorArgs),
    /// Where live processes run something other than what the DB and the audit log
    /// say, and the reconciling flip each line offers (`--flip` writes it).
    Reconcile(ReconcileArgs),
}

// No `Debug`: it may hold a TOTP code.
#[derive(Args)]
pub(crate) struct ReconcileArgs {
    /// Write the reconciling flip of this flag (with --env, --as and --reason): the
    /// proposed value, or --on/--off.
    #[arg(long, value_name = "KEY", requires_all = ["env", "actor", "reason"])]
    pub(crate) flip: Option<String>,
    /// Only this env's lines; with --flip, the env to reconcile.
    #[arg(long)]
    pub(crate) env: Option<String>,
    /// Write on: needed where the flip is offered but not proposed (it would change
    /// processes that follow the row).
    #[arg(long, requires = "flip", conflicts_with = "off")]
    pub(crate) on: bool,
    /// Write off: needed where the flip is offered but not proposed.
    #[arg(long, requires = "flip")]
    pub(crate) off: bool,
    /// The account acting; its role is checked as for any flip.
    #[arg(long = "as", value_name = "NAME", requires = "flip")]
    pub(crate) actor: Option<String>,
    /// Why, for the audit log (required: the incident, the break-glass change).
    #[arg(long, requires = "flip")]
    pub(crate) reason: Option<String>,
    /// A current TOTP code of the account, needed for a high-risk flag.
    #[arg(long, value_name = "CODE", requires = "flip")]
    pub(crate) totp: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// A source tree to scan for direct reads of FLAG_* variables (repeatable;
    /// .gitignore is respected): every line the runbook's grep lists, names built at
    /// run time included, and the reads it misses (Python, JS/TS, Ruby, Go, Rust,
    /// Java). Without one, that item is skipped.
    #[arg(long, value_name = "DIR")]
    pub(crate) code: Vec<PathBuf>,
    /// A FLAG_* variable that must be set on no live process any more, such as a
    /// feature's own gate after GA (repeatable): fails while a process has it.
    #[arg(long, value_name = "VAR", value_parser = flag_variable)]
    pub(crate) gone: Vec<String>,
    /// Only this application's processes (the VEXIL_APP they report).
    #[arg(long, value_name = "APP")]
    pub(crate) app: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonArgs,
}

/// A `FLAG_*` variable name as processes report it.
fn flag_variable(name: &str) -> Result<String, String> {
    if vexil_core::env_var::is_flag_variable(name) {
        Ok(name.to_owned())
    } else {
        Err("expected FLAG_ followed by upper-case letters, digits and underscores, e.g. FLAG_CONSOLE_FLAG_MGMT".to_owned())
    }
}

#[derive(Debug, Args)]
pub(crate) struct DeprecationArgs {
    /// Only this env's lines (the verdict still weighs every env's evidence).
    #[arg(long)]
    pub(crate) env: Option<String>,
    /// One line per application in each env (Heroku config is per app), judged on
    /// that application's processes.
    #[arg(long)]
    pub(crate) by_app: bool,
    /// Only this application's lines (implies --by-app).
    #[arg(long, value_name = "APP")]
    pub(crate) app: Option<String>,
    /// Print only the silenced `heroku config:unset` commands for each application
    /// where the variable is safe to remove and still set, to review and run by hand.
    #[arg(long, conflicts_with = "json")]
    pub(crate) heroku: bool,
    #[command(flatten)]
    pub(crate) json: JsonArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "VEXIL_BIND", default_value = "127.0.0.1:8080")]
    pub(crate) bind: String,
    /// A throw-away SQLite database with the example flags and one account per role
    /// (passwords printed once): the whole console in one command.
    #[arg(long)]
    pub(crate) demo: bool,
    /// The address operators open, e.g. https://flags.example.com: when it is https,
    /// the session cookie is marked Secure.
    #[arg(long, env = "VEXIL_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// A console session unused this long ends.
    #[arg(long, env = "VEXIL_SESSION_IDLE_MINUTES", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub(crate) session_idle_minutes: u64,
    /// A console session ends this long after sign-in, used or not.
    #[arg(long, env = "VEXIL_SESSION_MAX_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u64).range(1..=168))]
    pub(crate) session_max_hours: u64,
    /// How long a TOTP code elevates a console session.
    #[arg(long, env = "VEXIL_ELEVATION_MINUTES", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub(crate) elevation_minutes: u64,
    /// The envs whose console flips ask for a reason (comma-separated; empty for
    /// none). A prod flip is confirmed on its own page whatever this says; the API and
    /// the CLI, whose reason is optional, record what they are given.
    #[arg(
        long,
        env = "VEXIL_REQUIRE_REASON",
        default_value = "prod",
        value_name = "ENVS"
    )]
    pub(crate) require_reason: String,
    /// API requests per second one client address may make (and the burst); 0 turns
    /// the limit off, e.g. behind a proxy that limits.
    #[arg(long, env = "VEXIL_API_RATE_LIMIT", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub(crate) api_rate_limit: u32,
    /// How long an API token's account (role, enabled, not revoked) is trusted before
    /// it is read again: a revoked token or a disabled account is refused at most this
    /// long after the change.
    #[arg(long, env = "VEXIL_TOKEN_CACHE_SECONDS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub(crate) token_cache_seconds: u64,
    /// Requests per second one client key may make to /sdk/v1 and /ofrep/v1 (and the
    /// burst), whatever the address: a fleet behind one NAT shares it; 0 turns the
    /// limit off.
    #[arg(long, env = "VEXIL_SDK_RATE_LIMIT", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub(crate) sdk_rate_limit: u32,
    /// Events a subscriber of /sdk/v1/stream or /ofrep/v1/events may fall behind
    /// before it is dropped (it reconnects and resumes).
    #[arg(long, env = "VEXIL_SDK_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(16..=65_536))]
    pub(crate) sdk_queue: u64,
    /// A connection whose client accepts no byte for this long is closed (a
    /// subscriber that stopped reading).
    #[arg(long, env = "VEXIL_WRITE_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) write_timeout_seconds: u64,
    /// A client gets this long to send a request's head (from its first byte, or
    /// from the last answer on a kept-alive connection); then it is disconnected.
    #[arg(long, env = "VEXIL_HEADER_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) header_timeout_seconds: u64,
    /// A request gets this long from its head to its answer, its body included;
    /// then it is answered 408. Event streams are not bound by it.
    #[arg(long, env = "VEXIL_REQUEST_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) request_timeout_seconds: u64,
    /// Connections open at once (each event-stream subscriber holds one); one more
    /// is answered 503. Keep it under the process's open-file limit (ulimit -n).
    #[arg(long, env = "VEXIL_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_connections: u64,
    /// On SIGTERM, requests in flight get this long to finish; then the connections
    /// still open are dropped and the server exits.
    #[arg(long, env = "VEXIL_SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub(crate) shutdown_timeout_seconds: u64,
    /// `text` (for a terminal) or `json` (one object per line, for a log pipeline).
    /// Each line of a request carries its id, as sent back in `x-request-id`.
    #[arg(long, env = "VEXIL_LOG_FORMAT", default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// Do not migrate: serve only a database already at this vexil's schema. For a
    /// PostgreSQL role that cannot change the schema (`vexil db grants --runtime`);
    /// the schema's owner runs `vexil migrate` on upgrades (docs/deploy.md).
    #[arg(long, env = "VEXIL_NO_MIGRATE")]
    pub(crate) no_migrate: bool,
}

/// How `vexil serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct InstancesArgs {
    /// Only the processes of this env.
    #[arg(long)]
    pub(crate) env: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Print the PostgreSQL GRANTs for the role `vexil serve --no-migrate` runs as,
    /// and for the runbook's Option A role (which may only UPDATE
    /// console_feature_flags), to run as the schema's owner.
    Grants {
        /// The role vexil runs as: reads and writes its tables, cannot change the
        /// schema, the triggers or the audit log's past.
        #[arg(long, value_name = "ROLE")]
        runtime: String,
        /// The role an operator uses for the runbook's Option A (`UPDATE
        /// console_feature_flags …`), audited `via: sql`.
        #[arg(long, value_name = "ROLE")]
        break_glass: Option<String>,
        /// The schema vexil's tables are in.
        #[arg(long, value_name = "SCHEMA", default_value = "public")]
        schema: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the audit log against its hash chain: exit 0 when every sealed row is
    /// intact and in order, 1 naming the first row changed, removed, inserted or
    /// reordered (or claiming vexil wrote it without proof).
    Verify {
        /// A link kept outside the database (`vexil audit head`): the chain must
        /// still contain it.
        #[arg(long, value_name = "ID:HASH")]
        anchor: Option<String>,
        /// Verify an export file (`vexil audit export`) instead of the database.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Seal what is pending and print the newest link as ID:HASH, to keep outside
    /// the database as an anchor.
    Head,
    /// Write audit rows with their chain links, for an archive that can be verified
    /// later without the database. Nothing is deleted.
    Export {
        /// From this time on (RFC 3339, or a date: 2026-11-24).
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339, or a date).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormatArg::Jsonl)]
        format: ExportFormatArg,
    },
    /// One audit row and, for a flip, which live processes of its env apply it yet.
    Show {
        /// The audit row's id (the first column of `vexil audit`).
        id: i64,
        #[command(flatten)]
        json: JsonArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormatArg {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header, the payload as JSON text.
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct JsonArgs {
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create an account. The password is read from stdin (asked twice on a terminal).
    Add {
        /// The account's name: lower-case letters, digits and `_`, starting with a letter.
        name: String,
        /// readonly, support, ops or superadmin.
        #[arg(long)]
        role: String,
    },
    /// List the accounts.
    List(JsonArgs),
    /// Change an account's role.
    SetRole {
        /// The account.
        name: String,
        /// readonly, support, ops or superadmin.
        role: String,
    },
    /// Disable an account for good (its audit rows stay).
    Disable {
        /// The account.
        name: String,
    },
    /// Enrol TOTP for an account (replacing any earlier secret); prints the otpauth://
    /// URI once.
    Totp {
        /// The account.
        name: String,
    },
    /// On an adopted database (docs/adopt.md): map an old console admin's id to the
    /// vexil account of the same person; its rows then show the account, still
    /// marked as the old console's.
    MapAdmin(MapAdminArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create an API token for an account; it is printed once and stored only hashed.
    Create {
        /// The account the token acts for (its role applies at each request).
        name: String,
    },
    /// List the tokens (never the tokens themselves).
    List(JsonArgs),
    /// Revoke a token for good.
    Revoke {
        /// The token's id (from `vexil token list`).
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClientKeyCommand {
    /// Create a client key for one env and application; it is printed once and
    /// stored only hashed.
    Create {
        /// The one env the key reads.
        #[arg(long)]
        env: String,
        /// The application whose processes use it (letters, digits, '.', '_', '-').
        #[arg(long)]
        app: String,
    },
    /// List the client keys (never the keys themselves), with their last use.
    List(JsonArgs),
    /// Revoke a client key for good: servers refuse it within their key cache window,
    /// open streams included.
    Revoke {
        /// The key's id (from `vexil client-key list`).
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum FlagsCommand {
    /// Each flag with its value and source in each env.
    List {
        /// Only this env.
        #[arg(long)]
        env: Option<String>,
        /// List the stale flags instead: on in every env and unchanged for --days,
        /// never flipped, and rows of undeclared flags.
        #[arg(long, conflicts_with = "env")]
        stale: bool,
        /// With --stale: the age, in days, past which a flag on everywhere is listed.
        #[arg(long, requires = "stale", default_value_t = vexil_core::stale::DEFAULT_STALE_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        #[command(flatten)]
        json: JsonArgs,
    },
}

/// `vexil promotion …` (docs/promotion.md). No `Debug`: `promote` holds a TOTP code.
#[derive(Subcommand)]
pub(crate) enum PromotionCommand {
    /// Mark a flag that is on in staging and off in prod active for prod: a pending
    /// promotion whose soak (the flag's `soak_period_hours`) starts now.
    Mark {
        /// The flag's key.
        key: String,
        /// The account acting (superadmin).
        #[arg(long = "as", value_name = "NAME")]
        actor: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// List promotions, newest first.
    List {
        /// Only promotions in this state: pending, approved, promoted, rejected or
        /// expired.
        #[arg(long)]
        state: Option<String>,
        /// Only promotions of this flag.
        #[arg(long, value_name = "KEY")]
        flag: Option<String>,
        /// At most this many, 1 to 500.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// One promotion: its state, soak, approval, when it expires, and for a
    /// high-risk flag the phrase that promotes it.
    Show {
        /// The promotion's id (the first column of `vexil promotion list`).
        id: i64,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Approve a pending promotion whose soak has ended.
    Approve {
        /// The promotion's id.
        id: i64,
        /// The account acting (superadmin).
        #[arg(long = "as", value_name = "NAME")]
        actor: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Promote an approved promotion: the flag goes on in prod (a `console.flag.flip`
    /// row) and the promotion ends, in one transaction.
    Promote(PromoteArgs),
    /// Reject a pending or approved promotion, with a reason.
    Reject {
        /// The promotion's id.
        id: i64,
        /// The account acting (superadmin).
        #[arg(long = "as", value_name = "NAME")]
        actor: String,
        /// Why, for the audit log.
        #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        reason: String,
        #[command(flatten)]
        json: JsonArgs,
    },
}

#[derive(Args)]
pub(crate) struct PromoteArgs {
    /// The promotion's id.
    pub(crate) id: i64,
    /// The account acting (superadmin).
    #[arg(long = "as", value_name = "NAME")]
    pub(crate) actor: String,
    /// For a high-risk flag, the phrase `promote <key> to prod`, typed exactly.
    #[arg(long, value_name = "PHRASE")]
    pub(crate) confirm: Option<String>,
    /// A current TOTP code of the account, needed for a high-risk flag.
    #[arg(long, value_name = "CODE")]
    pub(crate) totp: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonArgs,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("value").required(true).args(["on", "off"])))]
pub(crate) struct FlipArgs {
    /// The flag's key.
    pub(crate) key: String,
    /// The env to flip it in.
    #[arg(long)]
    pub(crate) env: String,
    #[arg(long)]
    pub(crate) on: bool,
    #[arg(long)]
    pub(crate) off: bool,
    /// The account acting; its role is checked as in the console.
    #[arg(long = "as", value_name = "NAME")]
    pub(crate) actor: String,
    /// Why, for the audit log.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// A current TOTP code of the account, needed for a high-risk flag.
    #[arg(long, value_name = "CODE")]
    pub(crate) totp: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    pub(crate) show: Option<AuditCommand>,
    /// Only this action, e.g. console.flag.flip.
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Only rows about this flag.
    #[arg(long)]
    pub(crate) flag: Option<String>,
    /// Only rows written by this account.
    #[arg(long)]
    pub(crate) actor: Option<String>,
    /// Only rows about this env (flips, promotions).
    #[arg(long)]
    pub(crate) env: Option<String>,
    /// From this time on (RFC 3339, or a date: 2026-11-24).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Before this time (RFC 3339, or a date).
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: u32,
    #[command(flatten)]
    pub(crate) json: JsonArgs,
}
