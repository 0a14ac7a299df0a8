//! The only crate with SQL: vexil's tables on SQLite and PostgreSQL, one set of
//! queries for both.
//!
//! # Layout
//!
//! - `url.rs`: `DatabaseUrl`, parsed once and never printed with its password.
//! - `db.rs`: `Db` (a pool) and `WriteTx` (a write transaction), the `on_pool!` and
//!   `on_tx!` macros that run one query text on either backend, and `Dialect`, the
//!   little that differs between them.
//! - `migrate.rs`: the embedded migrations (`migrations/sqlite`, `migrations/postgres`).
//! - `adopt.rs`: adopting an old console's database (its two tables and their
//!   history); `adopt/shape.rs` the shape check, `adopt/sqlite.rs` and
//!   `adopt/postgres.rs` each backend's catalog and copy.
//! - `guards.rs`: `Db::broken_guards`, the triggers and trigger functions as they
//!   are (definition hashes, settings, owners), against what the migrations installed.
//! - `flags.rs`: `console_feature_flags` rows; `flag_defaults.rs`: the declared YAML
//!   defaults the triggers read (`vexil_flag_defaults`).
//! - `changes.rs`: the change feed (`console_flag_changes`, LISTEN/NOTIFY, SQLite's
//!   data version), which keeps every process's snapshot current.
//! - `instances.rs`: `vexil_instances`, what each live process reports about itself
//!   (to the database, or through a server).
//! - `audit.rs`: `console_audit_log`: append (inside a `WriteTx` only) and read pages.
//! - `seal.rs`: `console_audit_seals`: sealing the audit log into its hash chain
//!   (`Db::seal_audit`), its head, and walking it to verify (`Db::verify_audit`).
//! - `users.rs`: `users`, the accounts behind the role matrix, and their TOTP state.
//! - `old_admins.rs`: `console_adoption` and `console_old_admins`: an adopted
//!   console's admins, held by placeholder accounts, and what each is mapped to.
//! - `sessions.rs`: `console_sessions`, the console's sessions, keyed by a hash.
//! - `tokens.rs`: `api_tokens`, stored as SHA-256 hashes.
//! - `client_keys.rs`: `client_keys`, what applications follow a server with, stored
//!   as SHA-256 hashes.
//! - `promotions.rs`: `console_promotions`, where each staging → prod promotion is.
//! - `error.rs`: `StoreError`.
//!
//! A method that changes state takes the audit entry it writes (`NewAudit`) as an
//! argument and runs inside a `WriteTx`: a change without its audit row does not
//! compile.
//!
//! # Features
//!
//! `sqlite` and `postgres` (both by default) choose the backends compiled in; the
//! library (`crates/vexil`) may take one. A build with one refuses the other's URL
//! (`StoreError::NotBuiltIn`).

// With one backend, the other's constants, helpers and parameters go unused, and its
// `if let` on the transaction's one variant is irrefutable: expected, not dead code.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres")),
    allow(unused, irrefutable_let_patterns)
)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("vexil-store needs at least one backend: the feature `sqlite` or `postgres`");

mod adopt;
mod audit;
mod changes;
mod client_keys;
mod db;
mod error;
mod flag_defaults;
mod flags;
mod guards;
mod instances;
mod migrate;
mod old_admins;
mod promotions;
mod seal;
mod sessions;
mod tokens;
mod url;
mod users;

pub use adopt::{AdoptionReport, RunbookTables};
pub use audit::{AuditFilter, AuditRow, FlipCount, NewAudit, OldAdminOf};
pub use changes::{Change, ChangeFeed, ChangeTimes, FeedEvent};
pub use client_keys::{ClientKeyRow, NewClientKey};
pub use db::{AuditProver, Db, WriteTx};
pub use error::StoreError;
pub use flags::{Expected, FlagRow, FlagValue};
pub use instances::{InstanceReport, Receipt, Transport};
pub use migrate::MigrationReport;
pub use old_admins::{Adoption, OldAdminRow};
pub use promotions::{NewPromotion, PromotionMove, PromotionRow};
pub use seal::SealReport;
pub use sessions::StoredSession;
pub use tokens::TokenRow;
pub use url::{Backend, DatabaseUrl, UrlError};
pub use users::{NewUser, UserRow};
