//! Adoption on PostgreSQL: the catalog read from `information_schema` and
//! `pg_catalog` in the current schema (where vexil's migrations run), the two tables
//! locked for the whole transaction, their indexes and sequences renamed with them
//! (their names are the schema's, and vexil's would collide), and the flag table's
//! triggers held with `DISABLE TRIGGER USER` during the copy.
//!
//! A column declared `timestamp` (without time zone) is read as UTC; text payloads
//! are checked to be JSON row by row, since PostgreSQL 15 has no test that does not
//! abort the transaction.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AssertSqlSafe, PgConnection};
use vexil_core::audit::{FLAG_ADOPT, TARGET_FEATURE_FLAG, TARGET_USER, USER_OLD_ADMIN};
use vexil_core::old_admin::PLACEHOLDER_PREFIX;

use super::shape::{self, AUDIT_LOG, FLAGS, FoundColumn, FoundTable, Kind, Rule, Types};
use super::{Adopter, aside};
use crate::error::StoreError;

const TEXT: [&str; 3] = ["text", "character varying", "character"];
const INTEGER: [&str; 3] = ["smallint", "integer", "bigint"];
const TIMESTAMP: [&str; 2] = ["timestamp with time zone", "timestamp without time zone"];

/// How long the adoption waits for the old console's transactions to leave the two
/// tables before it gives up (and changes nothing).
const LOCK_TIMEOUT: &str = "10s";

/// A time column as `timestamptz`: a `timestamp` without zone is taken as UTC.
fn as_timestamptz(table: &FoundTable, column: &str) -> String {
    if table.declared(column) == "timestamp without time zone" {
        format!("({column} AT TIME ZONE 'UTC')")
    } else {
        column.to_owned()
    }
}

impl Types for PgConnection {
    fn accepts(kind: Kind, declared: &str) -> bool {
        match kind {
            Kind::Text => TEXT.contains(&declared),
            Kind::Integer | Kind::Value => INTEGER.contains(&declared),
            Kind::Timestamp => TIMESTAMP.contains(&declared),
            Kind::Json => ["jsonb", "json"].contains(&declared) || TEXT.contains(&declared),
            Kind::TextOrInteger => TEXT.contains(&declared) || INTEGER.contains(&declared),
        }
    }

    fn expected(kind: Kind) -> &'static str {
        match kind {
            Kind::Text => "text (text, varchar or char)",
            Kind::Integer => "an integer (smallint, integer or bigint)",
            Kind::Value => {
                "an integer 0 or 1 (smallint, integer or bigint), so that the runbook's SET value=1 works"
            }
            Kind::Timestamp => "a time (timestamptz, or timestamp taken as UTC)",
            Kind::Json => "JSON (jsonb, json, or text holding JSON)",
            Kind::TextOrInteger => "text or an integer",
        }
    }
}

impl Adopter for PgConnection {
    fn migrator() -> &'static Migrator {
        &crate::migrate::POSTGRES
    }

    async fn has_vexil_schema(&mut self) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&mut *self)
                .await?,
        )
    }

    async fn found(&mut self) -> Result<Vec<(&'static str, String)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.relname::text, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' \
                 WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
                 WHEN 'f' THEN 'foreign table' ELSE 'relation' END \
             FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
             AND c.relname IN ($1, $2) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        )
        .bind(FLAGS)
        .bind(AUDIT_LOG)
        .fetch_all(&mut *self)
        .await?;
        Ok(shape::RUNBOOK_TABLES
            .iter()
            .filter_map(|table| {
                rows.iter()
                    .find(|(name, _)| name == table)
                    .map(|(_, kind)| (*table, kind.clone()))
            })
            .collect())
    }

    async fn rows(&mut self, table: &str) -> Result<i64, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        Ok(sqlx::query_scalar(sql).fetch_one(&mut *self).await?)
    }

    /// Held until the end: the old console may still be writing. Its statements
    /// wait, then find vexil's tables under the same names (and a flag write is
    /// audited by vexil's triggers).
    async fn lock(&mut self, tables: &[&'static str]) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
        )))
        .execute(&mut *self)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            tables.join(", ")
        )))
        .execute(&mut *self)
        .await?;
        sqlx::query("SET LOCAL lock_timeout = 0")
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<FoundColumn>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, declared)| FoundColumn { name, declared })
            .collect())
    }

    fn rules(table: &FoundTable, passed: &[&str]) -> Vec<Rule> {
        let name = table.name;
        let not_null =
            |column: &'static str| Rule::on(name, column, format!("{column} IS NULL"), "is NULL");
        let envs = shape::env_names();
        let quoted_envs: Vec<String> = envs.iter().map(|env| format!("'{env}'")).collect();
        let all = if name == FLAGS {
            vec![
                Rule::on(
                    name,
                    "flag_key",
                    "flag_key IS NULL OR flag_key::text !~ '^[a-z][a-z0-9_]{0,63}$'",
                    "is not a flag key vexil can declare (^[a-z][a-z0-9_]{0,63}$)",
                ),
                Rule::on(
                    name,
                    "env",
                    format!(
                        "env IS NULL OR env::text NOT IN ({})",
                        quoted_envs.join(", ")
                    ),
                    format!("is not one of vexil's envs ({})", envs.join(", ")),
                ),
                Rule::on(
                    name,
                    "value",
                    "value IS NULL OR value NOT IN (0, 1)",
                    "is not 0 or 1",
                )
                .showing("value"),
                not_null("updated_at"),
                Rule::on_key(
                    name,
                    format!(
                        "(flag_key, env) IN (SELECT flag_key, env FROM {name} \
                         GROUP BY flag_key, env HAVING COUNT(*) > 1)"
                    ),
                ),
            ]
        } else {
            vec![
                Rule::on(
                    name,
                    "id",
                    "id IS NULL OR id <= 0",
                    "is NULL or not positive",
                ),
                Rule::on(
                    name,
                    "id",
                    format!("id IN (SELECT id FROM {name} GROUP BY id HAVING COUNT(*) > 1)"),
                    "is held by more than one row",
                ),
                not_null("created_at"),
                Rule::on(
                    name,
                    "admin_id",
                    "admin_id <= 0",
                    "is neither NULL nor a positive integer",
                )
                .showing("admin_id"),
                not_null("action"),
                not_null("target_type"),
                not_null("target_id"),
                not_null("payload"),
            ]
        };
        all.into_iter()
            .filter(|rule| rule.applies(passed))
            .collect()
    }

    async fn offenders(
        &mut self,
        table: &str,
        rule: &Rule,
    ) -> Result<(i64, Vec<String>), StoreError> {
        let (row, order) = if table == FLAGS {
            (
                "format('flag_key %s, env %s', quote_nullable(flag_key::text), quote_nullable(env::text))",
                "flag_key, env",
            )
        } else {
            ("'id ' || COALESCE(id::text, 'NULL')", "id")
        };
        // Shown as SQLite's `quote` shows it: numbers bare, text quoted.
        let shown = match rule.show {
            Some(column) => format!(
                "{row} || ' ({column} ' || CASE WHEN {column} IS NULL THEN 'NULL' \
                 WHEN pg_typeof({column})::text IN ('smallint', 'integer', 'bigint') \
                 THEN {column}::text ELSE quote_literal({column}::text) END || ')'"
            ),
            None => row.to_owned(),
        };
        let condition = &rule.condition;
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE {condition}"
        )))
        .fetch_one(&mut *self)
        .await?;
        if count == 0 {
            return Ok((0, Vec::new()));
        }
        let examples: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT {shown} FROM {table} WHERE {condition} ORDER BY {order} LIMIT {}",
            shape::EXAMPLES
        )))
        .fetch_all(&mut *self)
        .await?;
        Ok((count, examples))
    }

    async fn more_problems(
        &mut self,
        table: &FoundTable,
        passed: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        if table.name != AUDIT_LOG
            || !passed.contains(&"payload")
            || !TEXT.contains(&table.declared("payload"))
        {
            return Ok(Vec::new());
        }
        let mut rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, payload::text FROM console_audit_log WHERE payload IS NOT NULL ORDER BY id",
        )
        .fetch(&mut *self);
        let (mut count, mut examples) = (0i64, Vec::new());
        while let Some((id, payload)) = rows.try_next().await? {
            if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
                count += 1;
                if count <= shape::EXAMPLES {
                    examples.push(format!("id {id}"));
                }
            }
        }
        let rule = Rule::on(AUDIT_LOG, "payload", "", "is not JSON");
        Ok(if count > 0 {
            vec![shape::offending(&rule, count, &examples)]
        } else {
            Vec::new()
        })
    }

    /// Views built on the table, and other tables' foreign keys to it: dropping the
    /// set-aside table would fail on them (or take them with it).
    async fn dependents(&mut self, table: &str) -> Result<Vec<String>, StoreError> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT 'view ' || v.relname::text FROM pg_depend d \
                 JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class \
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
                 AND d.refobjid = to_regclass($1) AND v.oid <> to_regclass($1) \
             UNION ALL \
             SELECT 'table ' || c.conrelid::regclass::text || ' (foreign key ' || c.conname::text || ')' \
             FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = to_regclass($1) \
                 AND c.conrelid NOT IN (SELECT oid FROM pg_class WHERE relname IN ($2, $3) \
                     AND relnamespace = current_schema()::regnamespace) \
             ORDER BY 1",
        )
        .bind(table)
        .bind(FLAGS)
        .bind(AUDIT_LOG)
        .fetch_all(&mut *self)
        .await?;
        Ok(found
            .iter()
            .map(|what| shape::dependent(what, table))
            .collect())
    }

    async fn taken(&mut self, names: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END, c.relname::text \
             FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
             AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname::text = ANY($1) ORDER BY 2",
        )
        .bind(names)
        .fetch_all(&mut *self)
        .await?)
    }

    /// Renamed with its indexes and the sequences of its columns (`serial`, identity):
    /// their names are the schema's, and vexil's would take the same ones.
    async fn set_aside(&mut self, table: &str) -> Result<(), StoreError> {
        let renamed = aside(table);
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {table} RENAME TO {renamed}"
        )))
        .execute(&mut *self)
        .await?;
        let owned: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT c.relkind::text, quote_ident(c.relname), c.oid::bigint FROM pg_class c \
             WHERE c.relkind IN ('i', 'I', 'S') AND (\
                 c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = to_regclass($1)) \
                 OR c.oid IN (SELECT objid FROM pg_depend WHERE classid = 'pg_class'::regclass \
                     AND refclassid = 'pg_class'::regclass AND refobjid = to_regclass($1) \
                     AND deptype IN ('a', 'i')))",
        )
        .bind(&renamed)
        .fetch_all(&mut *self)
        .await?;
        for (kind, name, oid) in owned {
            let kind = if kind == "S" { "SEQUENCE" } else { "INDEX" };
            sqlx::query(AssertSqlSafe(format!(
                "ALTER {kind} {name} RENAME TO _vexil_adopt_{oid}"
            )))
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn migrate(&mut self, to: Option<i64>) -> Result<(), MigrateError> {
        match to {
            Some(to) => Self::migrator().run_to(to, &mut *self).await,
            None => Self::migrator().run(&mut *self).await,
        }
    }

    async fn old_admin_ids(&mut self) -> Result<Vec<i64>, StoreError> {
        let sql = AssertSqlSafe(format!(
            "SELECT DISTINCT admin_id::bigint FROM {} WHERE admin_id IS NOT NULL ORDER BY 1",
            aside(AUDIT_LOG)
        ));
        Ok(sqlx::query_scalar(sql).fetch_all(&mut *self).await?)
    }

    /// Disabled, and a password hash that is no PHC string: it never verifies.
    async fn add_placeholders(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, name, role, password_hash, disabled, created_at) \
             OVERRIDING SYSTEM VALUE \
             SELECT id, $2 || id, 'readonly', '!', 1, $3 FROM UNNEST($1::BIGINT[]) AS id ORDER BY id",
        )
        .bind(ids)
        .bind(PLACEHOLDER_PREFIX)
        .bind(now)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    /// With its ids; the identity then continues after the largest.
    async fn copy_audit_log(&mut self, table: &FoundTable) -> Result<(u64, i64), StoreError> {
        let old = aside(AUDIT_LOG);
        let created_at = as_timestamptz(table, "created_at");
        let copied = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {AUDIT_LOG} (id, created_at, admin_id, action, target_type, target_id, payload) \
             OVERRIDING SYSTEM VALUE \
             SELECT id, {created_at}, admin_id, action, target_type, target_id, payload::text::jsonb \
             FROM {old} ORDER BY id"
        )))
        .execute(&mut *self)
        .await?
        .rows_affected();
        let last: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COALESCE(MAX(id), 0)::bigint FROM {old}"
        )))
        .fetch_one(&mut *self)
        .await?;
        if last > 0 {
            sqlx::query("SELECT setval(pg_get_serial_sequence('console_audit_log', 'id'), $1)")
                .bind(last)
                .execute(&mut *self)
                .await?;
        }
        Ok((copied, last))
    }

    async fn audit_placeholders(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {AUDIT_LOG} (created_at, admin_id, action, target_type, target_id, payload) \
             SELECT $2, NULL, '{USER_OLD_ADMIN}', '{TARGET_USER}', $3 || id, \
             jsonb_build_object('name', $3 || id, 'admin_id', id, 'via', 'cli') \
             FROM UNNEST($1::BIGINT[]) AS id ORDER BY id"
        )))
        .bind(ids)
        .bind(now)
        .bind(PLACEHOLDER_PREFIX)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn copy_flags(
        &mut self,
        table: &FoundTable,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let old = aside(FLAGS);
        let updated_at = as_timestamptz(table, "o.updated_at");
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {FLAGS} DISABLE TRIGGER USER"
        )))
        .execute(&mut *self)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {AUDIT_LOG} (created_at, admin_id, action, target_type, target_id, payload) \
             SELECT $1, NULL, '{FLAG_ADOPT}', '{TARGET_FEATURE_FLAG}', flag_key, jsonb_build_object( \
                 'flag', flag_key::text, 'env', env::text, 'value', value = 1, 'via', 'cli') \
             FROM {old} ORDER BY flag_key, env"
        )))
        .bind(now)
        .execute(&mut *self)
        .await?;
        let copied = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {FLAGS} (flag_key, env, value, updated_at, updated_by, audit_id) \
             SELECT o.flag_key, o.env, o.value, {updated_at}, o.updated_by::text, \
                 (SELECT MAX(a.id) FROM {AUDIT_LOG} a WHERE a.action = '{FLAG_ADOPT}' \
                  AND a.target_id = o.flag_key::text AND a.payload ->> 'env' = o.env::text) \
             FROM {old} o ORDER BY o.flag_key, o.env"
        )))
        .execute(&mut *self)
        .await?
        .rows_affected();
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {FLAGS} ENABLE TRIGGER USER"
        )))
        .execute(&mut *self)
        .await?;
        Ok(copied)
    }

    async fn number_accounts_from(&mut self, from: i64) -> Result<(), StoreError> {
        sqlx::query("SELECT setval(pg_get_serial_sequence('users', 'id'), $1)")
            .bind(from - 1)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn drop_set_aside(&mut self, table: &str) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {}", aside(table))))
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn record(
        &mut self,
        now: DateTime<Utc>,
        last_old_audit_id: i64,
        accounts_from: i64,
        old_admins: &[i64],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_adoption (adopted_at, last_old_audit_id, accounts_from) \
             VALUES ($1, $2, $3)",
        )
        .bind(now)
        .bind(last_old_audit_id)
        .bind(accounts_from)
        .execute(&mut *self)
        .await?;
        sqlx::query("INSERT INTO console_old_admins (admin_id) SELECT UNNEST($1::BIGINT[])")
            .bind(old_admins)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}
