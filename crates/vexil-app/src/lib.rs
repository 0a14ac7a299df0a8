//! vexil's use cases: the only code that changes state. The console, the API and the
//! CLI all call these, so a flip is the same flip whichever door it comes through.
//!
//! # Layout
//!
//! - `app.rs`: `App`, what every use case needs (the database, the flags file, the
//!   envs, this process's `FLAG_*` variables, the clock), and `Actor`, an account
//!   allowed to act.
//! - `account.rs`: accounts (`add_user`, `set_role`, `disable_user`, `users`,
//!   `check_password`); `Admin`, who changes an account.
//! - `old_admin.rs`: an adopted console's admins (docs/adopt.md): `map_old_admin`,
//!   an old admin id mapped to a vexil account, and `old_admins`.
//! - `password.rs`: `Passwords`, argon2id hashing and checking on a thread per core,
//!   with a bounded queue (`AppError::Busy` beyond it).
//! - `flag_state.rs`: `App::flag_states`, every flag in each env as this process
//!   resolves it, with the row behind it and the rows no declaration claims.
//! - `flip.rs`: `App::flip`, which reads top to bottom: authorize → begin → read
//!   the current value → conflict? → write the row and its audit row → commit.
//! - `promotion.rs`: staging → prod promotion (`mark_promote`, `approve`, `promote`,
//!   `reject`, `expire_due`), each one transaction deciding with
//!   `vexil_core::promotion` and writing the move with its audit row.
//! - `deprecation.rs`: the runbook's deprecation table, gathered from rows, flips and
//!   live processes' reports, judged by `vexil_core::deprecation`.
//! - `code_scan.rs`: `scan_trees`, the direct reads of `FLAG_*` variables in source
//!   trees (Python, JS/TS, Ruby, Go, Rust, Java) as `file:line`, names built at run
//!   time included, walked the way git ignores files: every line the runbook's grep
//!   lists and the reads it misses; for `vexil doctor --code` (docs/code-scan.md).
//! - `doctor.rs`: the runbook's GA checklist and vexil's own health (`doctor`),
//!   judged by `vexil_core::doctor`.
//! - `reconcile.rs`: where live processes run something other than the DB row
//!   (`reconciliation`), and the reconciling flip (`reconcile`).
//! - `import.rs`: `App::import`, an app's `FLAG_*` config moved into rows, all or
//!   nothing, each with its audit row (`"via": "import"`); `App::import_plan`, the
//!   same judged and not written (docs/import.md).
//! - `instances.rs`: the live processes' reports (`live_instances`) and the
//!   propagation receipts of one audited change (`receipts`), or of a page of
//!   them (`receipts_for`).
//! - `receipt_summary.rs`: `ReceiptSummary`, a receipt in one line ("seen by 2 of 3
//!   instances, slowest 41 ms; missing: …").
//! - `fleet.rs`: `App::fleet`, each env's live processes and where they drift
//!   (`EnvFleet`, decided from the reports alone).
//! - `stale.rs`: `stale_flags`: flags on everywhere and unchanged for days, never
//!   flipped, and rows no declaration claims (`vexil_core::stale`).
//! - `elevation.rs`: `App::authorize` (the role, then TOTP elevation where the
//!   matrix asks for it), `Elevation`, which only this crate makes, `StepUp` and
//!   `TotpCode`.
//! - `form_key.rs`: `FormKey`, the sign-in form's stateless CSRF token.
//! - `sign_in.rs`: a console session's life, audited: `sign_in`, the elevation code
//!   check, `sign_out`, with a lock after repeated failures counted in the audit log (so it
//!   holds across processes).
//! - `totp.rs`: TOTP enrolment (by an operator, or self-service with a confirming
//!   code) and `check_totp` (a code is accepted once only).
//! - `token.rs`: API tokens (`vxl_…`, stored as SHA-256): create, list, revoke, and
//!   the actor a presented token acts for.
//! - `client_key.rs`: client keys (`vxc_…`, stored as SHA-256, one env and one
//!   application each): create, list, revoke, the `Client` a presented key acts for,
//!   and `report_process`, a following process's report recorded as a live instance.
//! - `audit_integrity.rs`: the audit log's hash chain (`seal_audit`, `audit_head`,
//!   `verify_audit`, `verify_audit_file`), its export, and `AuditMac`, the proof
//!   vexil writes on its own rows.
//! - `audit_log.rs`: `App::audit_page`, the audit log read for a role that may, and
//!   `App::audit_names` (`AuditNames`), what its filters can be given;
//!   `check_audit_filter`, its free text checked (`vexil_core::text`).
//! - `change_feed.rs`: what the server's evaluation plane reads (the change feed, the
//!   changes it names, each env's rows).
//! - `upkeep.rs`: what a long-running server tidies away, and its readiness check.
//! - `secret_key.rs`: `SecretKey`, which encrypts TOTP secrets at rest.
//! - `error.rs`: `AppError`.

mod account;
mod app;
mod audit_integrity;
mod audit_log;
mod change_feed;
mod client_key;
pub mod code_scan;
mod deprecation;
mod doctor;
mod elevation;
mod error;
mod flag_state;
mod fleet;
mod flip;
mod form_key;
mod import;
mod instances;
mod old_admin;
mod password;
mod promotion;
mod receipt_summary;
mod reconcile;
mod secret_key;
mod sign_in;
mod stale;
mod token;
mod totp;
mod upkeep;

pub use account::{Admin, MIN_PASSWORD_CHARS};
pub use app::{Actor, App};
pub use audit_integrity::{AuditCheck, BadExport, ExportFormat, SessionMac};
pub use audit_log::{AuditNames, check_audit_filter};
pub use client_key::{CLIENT_KEY_PREFIX, Client};
pub use deprecation::FlagDeprecation;
pub use elevation::{DEFAULT_ELEVATION_WINDOW, Elevation, StepUp, TotpCode};
pub use error::{AppError, ErrorKind};
pub use flag_state::{FlagState, FlagStates};
pub use fleet::{EnvFleet, FleetInstance, ReportedVar, RowDrift};
pub use flip::{Flip, Flipped, parse_flag_key};
pub use form_key::FormKey;
pub use import::{Import, Imported};
pub use instances::{GONE_AFTER, ReceiptState, Receipts, VEXIL_SERVE_APP};
pub use promotion::{PromoteRequest, PromotionRecord, Stepped};
pub use receipt_summary::ReceiptSummary;
pub use reconcile::{PairFinding, Reconcile, Reconciliation};
pub use secret_key::SecretKey;
pub use sign_in::{ACCOUNT_FAILURES, LOCK_WINDOW, MAX_FAILURES};
pub use stale::StaleFlags;
pub use token::TOKEN_PREFIX;
pub use totp::{PendingTotp, code_at};
