//! The database's own guards, checked as they are, not as they are named: the
//! triggers that keep the audit log and its seals append-only and audit direct SQL
//! on `console_feature_flags`, and (PostgreSQL) the functions they call: each body's
//! SHA-256, `SECURITY DEFINER`, the pinned `search_path` and the owner
//! (docs/audit-integrity.md). An operator with DDL rights can drop, disable or
//! replace any of them; the migrations never do, so anything reported here is a
//! change made by hand.
//!
//! The hashes are of the text the migrations install. A migration that changes a
//! guard changes its hash here too; the doctor tests (a freshly migrated database
//! must pass) fail until it does.

use crate::db::{Db, Pool};
use crate::error::StoreError;

/// SQLite: each trigger and the SHA-256 of its `CREATE TRIGGER` text; and the view
/// that the insert trigger reads the value before a row from (a view replaced could
/// make its audit rows lie).
const SQLITE_TRIGGERS: &[(&str, &str)] = &[
    (
        "console_audit_log_no_delete",
        "0259758ff6dcd09fae0ef355efd2d999e5b19fdc5ddc7fb4a18e32072e12f164",
    ),
    (
        "console_audit_log_no_replace",
        "983830393af7fecf5538abacd475cb1a8ad0f5d59ea76673029c1c7585bec8c7",
    ),
    (
        "console_audit_log_no_update",
        "e64f600dea78f032aca144641b086b70e0f65761da6fdee03e7a7830bc204a9b",
    ),
    (
        "console_audit_seals_no_delete",
        "44198703c026ac559d1005f240c1eacdbeabf9e373a9194f87ed1315c8aa085c",
    ),
    (
        "console_audit_seals_no_replace",
        "8eea21460683d5b148e28ab49e6687cad5f7020cf8a8e6dc063f1b524f33ea7f",
    ),
    (
        "console_audit_seals_no_update",
        "8540b6835ef48bdec225d9a22a2c82ca8157277722e5cfd159a44ff250a7f81d",
    ),
    (
        "console_feature_flags_changed_delete",
        "65c142e5a9c982fca9fed62716bc4b96a9b6935713ee29233fc385168c7ff31e",
    ),
    (
        "console_feature_flags_changed_insert",
        "731699de81aa232ae111dba8086f7c0c09eaf264eacc71c251f79fc37ac68e66",
    ),
    (
        "console_feature_flags_changed_update",
        "d0556ef0a111ad084f56dbfd6f71f4f5f604385ba97e068675c8310e1a4b8b75",
    ),
    // A pair renamed by SQL would vanish without an audit row (PostgreSQL checks
    // this inside its update trigger's function).
    (
        "console_feature_flags_key_fixed",
        "596465c1254841c93f735cead6a7b788151a645c1dbebbdaf8f1c1c06d09b345",
    ),
    (
        "console_feature_flags_sql_delete",
        "70845632345d41e0d36f43e4774e7bc028fcd4f13f0987315ad8eeb74beaf96b",
    ),
    (
        "console_feature_flags_sql_insert",
        "fc670e411425ab9e9a3ee76b54ff5082ba64bdd8a21e04a7b59198c22ff57c85",
    ),
    (
        "console_feature_flags_sql_update",
        "081523c47ada6c1149dbd0199e5618cca91d9962426ec798e5e925fa00471938",
    ),
    (
        "vexil_value_without_row",
        "ee1cca69d5d44cf95a9a9c2f8b1fa297fbbec689cfba6a043f9ab4375c41809f",
    ),
];

/// PostgreSQL: each trigger, its table and the function it must call.
const POSTGRES_TRIGGERS: &[(&str, &str, &str)] = &[
    (
        "console_audit_log",
        "console_audit_log_no_update_or_delete",
        "console_audit_log_append_only",
    ),
    (
        "console_audit_log",
        "console_audit_log_no_truncate",
        "console_audit_log_append_only",
    ),
    (
        "console_audit_log",
        "console_audit_log_sealing_order",
        "console_audit_log_sealing_order",
    ),
    (
        "console_audit_seals",
        "console_audit_seals_no_update_or_delete",
        "console_audit_seals_append_only",
    ),
    (
        "console_audit_seals",
        "console_audit_seals_no_truncate",
        "console_audit_seals_append_only",
    ),
    (
        "console_feature_flags",
        "console_feature_flags_sql_update",
        "console_feature_flags_audit_update",
    ),
    (
        "console_feature_flags",
        "console_feature_flags_sql_insert",
        "console_feature_flags_audit_insert",
    ),
    (
        "console_feature_flags",
        "console_feature_flags_sql_delete",
        "console_feature_flags_audit_delete",
    ),
    (
        "console_feature_flags",
        "console_feature_flags_no_truncate",
        "console_feature_flags_no_truncate",
    ),
    (
        "console_feature_flags",
        "console_feature_flags_changed",
        "console_feature_flags_changed",
    ),
];

/// PostgreSQL: each guard function and the SHA-256 of its body.
const POSTGRES_FUNCTIONS: &[(&str, &str)] = &[
    (
        "console_audit_log_append_only",
        "2f682ab4d380c5f1e44618102c92f117ada6a638e049fd4962f47ee49f03ebb1",
    ),
    (
        "console_audit_log_sealing_order",
        "f00d1ffa5e475a7b22872d5247b6f07c68eb7affdc658c95611add158bdd7fd5",
    ),
    (
        "console_audit_seals_append_only",
        "d62df9eb95c457b5335db27d6716cc5cae1eab9b2387eb9f64f0597cd474cb5f",
    ),
    (
        "console_feature_flags_audit_delete",
        "1b53cdc1a62cc29f47580128e497bb040f78cda2b2c29147d472aaf005aefa11",
    ),
    (
        "console_feature_flags_audit_insert",
        "8f66c72ae274381215a40b723fbda74f4f90626551987ad444172d8c925c5eb1",
    ),
    (
        "console_feature_flags_audit_update",
        "d01c86a39c4e68be988cb39d6f5d5151fa9f950b248baad7c2046be76590553a",
    ),
    (
        "console_feature_flags_changed",
        "ac2c32afcbd254bcb14d4b4a9b168d4a2ef86fdeb32e9b8d8545c548dd5775c1",
    ),
    (
        "console_feature_flags_names_its_flip",
        "bd686914f2603a1af6de03c0d40a3ef472c65f381d315f7b2f99668a39933ea3",
    ),
    (
        "console_feature_flags_no_truncate",
        "ec2b5681eb9382e02cee45f51f1c0abf2bfab2c9d166a9d4d4c7b2f57a004a13",
    ),
    (
        "console_feature_flags_value_without_row",
        "2258f58ce13d7b94be32e02216e2e7d5518c73f55a6e39b3a05fd0b332d564ef",
    ),
];

/// A function as read: name, body hash, SECURITY DEFINER, settings, owner.
#[cfg(feature = "postgres")]
type GuardFunction = (String, String, bool, Option<Vec<String>>, String);

impl Db {
    /// Every guard that is missing, disabled, calls another function, or whose
    /// definition, settings or owner differ from what the migrations installed, in
    /// words; empty when every guard is as installed.
    pub async fn broken_guards(&self) -> Result<Vec<String>, StoreError> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                let found: Vec<(String, String)> = sqlx::query_as(
                    "SELECT name, sql FROM sqlite_master WHERE type IN ('trigger', 'view')",
                )
                .fetch_all(pool)
                .await?;
                Ok(SQLITE_TRIGGERS
                    .iter()
                    .filter_map(|(name, hash)| {
                        match found.iter().find(|(n, _)| n == name) {
                            None => Some(format!("{} {name} is missing", kind(name))),
                            Some((_, sql)) if sha256_hex(sql) != *hash => {
                                Some(format!("{} {name} was replaced (its definition is not the one vexil installed)", kind(name)))
                            }
                            Some(_) => None,
                        }
                    })
                    .collect())
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                // Fires in a normal session only when `tgenabled` is `O` (origin) or
                // `A` (always): `D` is `DISABLE TRIGGER`, `R` fires on replicas only.
                let triggers: Vec<(String, String, bool, String)> = sqlx::query_as(
                    "SELECT c.relname::text, t.tgname::text, t.tgenabled IN ('O', 'A'), p.proname::text \
                     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                     JOIN pg_proc p ON p.oid = t.tgfoid \
                     WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace",
                )
                .fetch_all(pool)
                .await?;
                let functions: Vec<GuardFunction> = sqlx::query_as(
                    "SELECT p.proname::text, encode(sha256(convert_to(p.prosrc, 'UTF8')), 'hex'), \
                         p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner)::text \
                         FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace",
                )
                .fetch_all(pool)
                .await?;
                let (schema, owner): (String, String) = sqlx::query_as(
                    "SELECT quote_ident(current_schema()), pg_get_userbyid(relowner)::text \
                     FROM pg_class WHERE oid = 'console_audit_log'::regclass",
                )
                .fetch_one(pool)
                .await?;
                let pinned = format!("search_path=pg_catalog, {schema}, pg_temp");
                let mut broken = Vec::new();
                for (table, name, function) in POSTGRES_TRIGGERS {
                    match triggers.iter().find(|(t, n, _, _)| t == table && n == name) {
                        None => broken.push(format!("trigger {name} is missing")),
                        Some((_, _, false, _)) => {
                            broken.push(format!("trigger {name} is disabled"));
                        }
                        Some((_, _, true, calls)) if calls != function => {
                            broken.push(format!("trigger {name} calls {calls}, not {function}"));
                        }
                        Some(_) => {}
                    }
                }
                for (name, hash) in POSTGRES_FUNCTIONS {
                    match functions.iter().find(|(n, ..)| n == name) {
                        None => broken.push(format!("function {name} is missing")),
                        Some((_, body, definer, config, by)) => {
                            if body != hash {
                                broken.push(format!(
                                    "function {name} was replaced (its body is not the one vexil installed)"
                                ));
                            }
                            if !definer {
                                broken.push(format!("function {name} is not SECURITY DEFINER"));
                            }
                            if config.as_deref() != Some(std::slice::from_ref(&pinned)) {
                                broken.push(format!(
                                    "function {name} does not pin its search_path ({pinned})"
                                ));
                            }
                            if *by != owner {
                                broken.push(format!(
                                    "function {name} is owned by {by}, not by {owner} (the tables' owner)"
                                ));
                            }
                        }
                    }
                }
                Ok(broken)
            }
        }
    }
}

/// What a SQLite guard is, for the sentence that names it.
#[cfg(feature = "sqlite")]
fn kind(name: &str) -> &'static str {
    if name.starts_with("vexil_") {
        "view"
    } else {
        "trigger"
    }
}

#[cfg(feature = "sqlite")]
fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    vexil_core::audit_chain::hex(&sha2::Sha256::digest(text.as_bytes()))
}
