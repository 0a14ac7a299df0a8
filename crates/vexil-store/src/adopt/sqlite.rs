//! Adoption on SQLite: the catalog read from `sqlite_master` and `pragma_table_info`,
//! values judged by their storage class (SQLite keeps whatever a column is given),
//! and the flag table's triggers held by dropping them and creating them again from
//! their own text, so the schema keeps exactly a fresh database's definitions.

use chrono::{DateTime, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AssertSqlSafe, SqliteConnection};
use vexil_core::audit::{FLAG_ADOPT, TARGET_FEATURE_FLAG, TARGET_USER, USER_OLD_ADMIN};
use vexil_core::old_admin::PLACEHOLDER_PREFIX;

use super::shape::{self, AUDIT_LOG, FLAGS, FoundColumn, FoundTable, Kind, Rule, Types};
use super::{Adopter, aside};
use crate::db::Dialect;
use crate::error::StoreError;

/// A time as vexil writes it on SQLite (`db.rs`), and as the runbook's
/// `CURRENT_TIMESTAMP` does: `YYYY-MM-DD HH:MM:SS`, a fraction optional. Other text
/// (`…T…Z`, a local format, a number) would sort apart from vexil's rows in the
/// runbook's `ORDER BY created_at`.
fn not_a_time(column: &str) -> String {
    let d = "[0-9]";
    format!(
        "typeof({column}) <> 'text' OR NOT ( \
         ({column} GLOB '{d}{d}{d}{d}-{d}{d}-{d}{d} {d}{d}:{d}{d}:{d}{d}' \
          OR ({column} GLOB '{d}{d}{d}{d}-{d}{d}-{d}{d} {d}{d}:{d}{d}:{d}{d}.{d}*' \
              AND substr({column}, 21) NOT GLOB '*[^0-9]*')) \
         AND date(substr({column}, 1, 10)) IS substr({column}, 1, 10) \
         AND time(substr({column}, 12, 8)) IS substr({column}, 12, 8))"
    )
}

/// SQLite's type affinity of a declared type (its documented rules, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

fn affinity(declared: &str) -> Affinity {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("INT") {
        Affinity::Integer
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
        Affinity::Text
    } else if upper.contains("BLOB") || upper.trim().is_empty() {
        Affinity::Blob
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) {
        Affinity::Real
    } else {
        Affinity::Numeric
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Types for SqliteConnection {
    /// The declared type matters little on SQLite; what it would do to values does:
    /// an id or `value` in a TEXT column keeps `'1'` as text, a time in an INTEGER
    /// one is a number. The values themselves are judged by the rules.
    fn accepts(kind: Kind, declared: &str) -> bool {
        let affinity = affinity(declared);
        match kind {
            Kind::Integer | Kind::Value => {
                matches!(affinity, Affinity::Integer | Affinity::Numeric)
            }
            Kind::Text | Kind::Timestamp | Kind::Json => {
                matches!(
                    affinity,
                    Affinity::Text | Affinity::Blob | Affinity::Numeric
                )
            }
            Kind::TextOrInteger => affinity != Affinity::Real,
        }
    }

    fn expected(kind: Kind) -> &'static str {
        match kind {
            Kind::Text => "text (a TEXT column)",
            Kind::Integer => "an integer (an INTEGER column)",
            Kind::Value => {
                "an integer 0 or 1 (an INTEGER column), so that the runbook's SET value=1 works"
            }
            Kind::Timestamp => "a UTC time as text (a TEXT or DATETIME column)",
            Kind::Json => "JSON text (a TEXT or JSON column)",
            Kind::TextOrInteger => "text or an integer",
        }
    }
}

impl Adopter for SqliteConnection {
    fn migrator() -> &'static Migrator {
        &crate::migrate::SQLITE
    }

    async fn has_vexil_schema(&mut self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&mut *self)
        .await?;
        Ok(n > 0)
    }

    async fn found(&mut self) -> Result<Vec<(&'static str, String)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT lower(name), type FROM sqlite_master \
             WHERE type IN ('table', 'view') AND lower(name) IN ($1, $2)",
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

    /// The transaction began `IMMEDIATE`: it holds the write lock already.
    async fn lock(&mut self, _tables: &[&'static str]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<FoundColumn>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
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
        let text = |column: &'static str| {
            Rule::on(
                name,
                column,
                format!("typeof({column}) <> 'text'"),
                "is NULL or not text",
            )
        };
        let envs = shape::env_names();
        let quoted_envs: Vec<String> = envs.iter().map(|env| format!("'{env}'")).collect();
        let all = if name == FLAGS {
            vec![
                Rule::on(
                    name,
                    "flag_key",
                    "typeof(flag_key) <> 'text' OR length(flag_key) > 64 \
                     OR flag_key NOT GLOB '[a-z]*' OR flag_key GLOB '*[^a-z0-9_]*'",
                    "is not a flag key vexil can declare (^[a-z][a-z0-9_]{0,63}$)",
                ),
                Rule::on(
                    name,
                    "env",
                    format!(
                        "typeof(env) <> 'text' OR env NOT IN ({})",
                        quoted_envs.join(", ")
                    ),
                    format!("is not one of vexil's envs ({})", envs.join(", ")),
                ),
                Rule::on(
                    name,
                    "value",
                    "typeof(value) <> 'integer' OR value NOT IN (0, 1)",
                    "is not 0 or 1",
                )
                .showing("value"),
                Rule::on(
                    name,
                    "updated_at",
                    not_a_time("updated_at"),
                    "is not a UTC time as vexil writes it (YYYY-MM-DD HH:MM:SS, a fraction optional)",
                )
                .showing("updated_at"),
                Rule::on(
                    name,
                    "updated_by",
                    "updated_by IS NOT NULL AND typeof(updated_by) NOT IN ('text', 'integer')",
                    "is neither text nor an integer",
                )
                .showing("updated_by"),
                Rule::on_key(
                    name,
                    format!(
                        "EXISTS (SELECT 1 FROM {name} o WHERE o.flag_key IS {name}.flag_key \
                         AND o.env IS {name}.env AND o.rowid <> {name}.rowid)"
                    ),
                ),
            ]
        } else {
            vec![
                Rule::on(
                    name,
                    "id",
                    "typeof(id) <> 'integer' OR id <= 0",
                    "is not a positive integer",
                ),
                Rule::on(
                    name,
                    "id",
                    format!("id IN (SELECT id FROM {name} GROUP BY id HAVING COUNT(*) > 1)"),
                    "is held by more than one row",
                ),
                Rule::on(
                    name,
                    "created_at",
                    not_a_time("created_at"),
                    "is not a UTC time as vexil writes it (YYYY-MM-DD HH:MM:SS, a fraction optional)",
                )
                .showing("created_at"),
                Rule::on(
                    name,
                    "admin_id",
                    "admin_id IS NOT NULL AND (typeof(admin_id) <> 'integer' OR admin_id <= 0)",
                    "is neither NULL nor a positive integer",
                )
                .showing("admin_id"),
                text("action"),
                text("target_type"),
                text("target_id"),
                Rule::on(
                    name,
                    "payload",
                    "typeof(payload) <> 'text' OR NOT json_valid(payload)",
                    "is NULL or not JSON text",
                ),
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
                "'flag_key ' || quote(flag_key) || ', env ' || quote(env)",
                "flag_key, env",
            )
        } else {
            ("'id ' || quote(id)", "id")
        };
        let shown = match rule.show {
            Some(column) => format!("{row} || ' ({column} ' || quote({column}) || ')'"),
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
        _table: &FoundTable,
        _passed: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Views, and triggers of other tables, whose text names the table (SQLite keeps
    /// no dependencies), and other tables' foreign keys to it.
    async fn dependents(&mut self, table: &str) -> Result<Vec<String>, StoreError> {
        let mut found: Vec<String> = sqlx::query_scalar(
            "SELECT type || ' ' || name FROM sqlite_master \
             WHERE type IN ('view', 'trigger') AND lower(tbl_name) NOT IN ($2, $3) \
             AND instr(lower(sql), $1) > 0 ORDER BY type, name",
        )
        .bind(table)
        .bind(FLAGS)
        .bind(AUDIT_LOG)
        .fetch_all(&mut *self)
        .await?;
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT 'table ' || m.name || ' (a foreign key)' \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
             WHERE m.type = 'table' AND lower(f.\"table\") = $1 \
             AND lower(m.name) NOT IN ($2, $3) ORDER BY 1",
        )
        .bind(table)
        .bind(FLAGS)
        .bind(AUDIT_LOG)
        .fetch_all(&mut *self)
        .await?;
        found.extend(keys);
        Ok(found
            .iter()
            .map(|what| shape::dependent(what, table))
            .collect())
    }

    async fn taken(&mut self, names: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') \
             AND lower(name) IN (SELECT value FROM json_each($1)) ORDER BY name",
        )
        .bind(sqlx::types::Json(names))
        .fetch_all(&mut *self)
        .await?)
    }

    /// The table's own indexes and triggers are dropped (they go with it anyway, and
    /// their names may be the ones vexil's get), then it is renamed.
    async fn set_aside(&mut self, table: &str) -> Result<(), StoreError> {
        let owned: Vec<(String, String)> = sqlx::query_as(
            "SELECT type, name FROM sqlite_master \
             WHERE type IN ('index', 'trigger') AND lower(tbl_name) = $1 AND sql IS NOT NULL",
        )
        .bind(table)
        .fetch_all(&mut *self)
        .await?;
        for (kind, name) in owned {
            let kind = if kind == "index" { "INDEX" } else { "TRIGGER" };
            sqlx::query(AssertSqlSafe(format!("DROP {kind} {}", quoted(&name))))
                .execute(&mut *self)
                .await?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {table} RENAME TO {}",
            aside(table)
        )))
        .execute(&mut *self)
        .await?;
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
            "SELECT DISTINCT admin_id FROM {} WHERE admin_id IS NOT NULL ORDER BY 1",
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
             SELECT value, $2 || value, 'readonly', '!', 1, $3 FROM json_each($1) ORDER BY key",
        )
        .bind(sqlx::types::Json(ids))
        .bind(PLACEHOLDER_PREFIX)
        .bind(<sqlx::Sqlite as Dialect>::timestamp(now))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    /// Verbatim; AUTOINCREMENT then numbers new rows after the largest id.
    async fn copy_audit_log(&mut self, _table: &FoundTable) -> Result<(u64, i64), StoreError> {
        let old = aside(AUDIT_LOG);
        let copied = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {AUDIT_LOG} (id, created_at, admin_id, action, target_type, target_id, payload) \
             SELECT id, created_at, admin_id, action, target_type, target_id, payload FROM {old} ORDER BY id"
        )))
        .execute(&mut *self)
        .await?
        .rows_affected();
        let last: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COALESCE(MAX(id), 0) FROM {old}"
        )))
        .fetch_one(&mut *self)
        .await?;
        Ok((copied, last))
    }

    async fn audit_placeholders(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {AUDIT_LOG} (created_at, admin_id, action, target_type, target_id, payload) \
             SELECT $2, NULL, '{USER_OLD_ADMIN}', '{TARGET_USER}', $3 || value, \
             json_object('name', $3 || value, 'admin_id', value, 'via', 'cli') \
             FROM json_each($1) ORDER BY key"
        )))
        .bind(sqlx::types::Json(ids))
        .bind(<sqlx::Sqlite as Dialect>::timestamp(now))
        .bind(PLACEHOLDER_PREFIX)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn copy_flags(
        &mut self,
        _table: &FoundTable,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let old = aside(FLAGS);
        let triggers: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = $1 ORDER BY rowid",
        )
        .bind(FLAGS)
        .fetch_all(&mut *self)
        .await?;
        for (name, _) in &triggers {
            sqlx::query(AssertSqlSafe(format!("DROP TRIGGER {}", quoted(name))))
                .execute(&mut *self)
                .await?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {AUDIT_LOG} (created_at, admin_id, action, target_type, target_id, payload) \
             SELECT $1, NULL, '{FLAG_ADOPT}', '{TARGET_FEATURE_FLAG}', flag_key, json_object( \
                 'flag', flag_key, 'env', env, \
                 'value', json(CASE value WHEN 1 THEN 'true' ELSE 'false' END), 'via', 'cli') \
             FROM {old} ORDER BY flag_key, env"
        )))
        .bind(<sqlx::Sqlite as Dialect>::timestamp(now))
        .execute(&mut *self)
        .await?;
        let copied = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {FLAGS} (flag_key, env, value, updated_at, updated_by, audit_id) \
             SELECT o.flag_key, o.env, o.value, o.updated_at, CAST(o.updated_by AS TEXT), \
                 (SELECT MAX(a.id) FROM {AUDIT_LOG} a WHERE a.action = '{FLAG_ADOPT}' \
                  AND a.target_id = o.flag_key AND json_extract(a.payload, '$.env') = o.env) \
             FROM {old} o ORDER BY o.flag_key, o.env"
        )))
        .execute(&mut *self)
        .await?
        .rows_affected();
        // Created again from their own text: the schema keeps their exact definitions.
        for (_, sql) in &triggers {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .execute(&mut *self)
                .await?;
        }
        Ok(copied)
    }

    async fn number_accounts_from(&mut self, from: i64) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE sqlite_sequence SET seq = $1 WHERE name = 'users'")
            .bind(from - 1)
            .execute(&mut *self)
            .await?
            .rows_affected();
        if updated == 0 {
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', $1)")
                .bind(from - 1)
                .execute(&mut *self)
                .await?;
        }
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
        .bind(<sqlx::Sqlite as Dialect>::timestamp(now))
        .bind(last_old_audit_id)
        .bind(accounts_from)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO console_old_admins (admin_id) SELECT value FROM json_each($1) ORDER BY key",
        )
        .bind(sqlx::types::Json(old_admins))
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}
