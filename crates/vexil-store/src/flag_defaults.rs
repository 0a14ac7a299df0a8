//! `vexil_flag_defaults` (migration 0008): each declared flag's YAML default, as the
//! processes that link vexil in database mode declared it when they started. The
//! database's triggers read it to say what was in force before a row inserted by
//! direct SQL (docs/schema.md, "Direct SQL"); nothing else does.

use std::collections::BTreeMap;

use crate::db::{Db, on_pool};
use crate::error::StoreError;

impl Db {
    /// Records `defaults` (flag key → default), in one statement that writes only
    /// the defaults that differ from the recorded ones. Flags no longer declared are
    /// left: another process may still declare them, and a stale default only names
    /// a value "before" that the audit row marks as the default's.
    pub async fn declare_defaults(
        &self,
        defaults: &BTreeMap<String, bool>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(defaults).map_err(|error| StoreError::Corrupt {
            what: format!("flag defaults that do not serialise: {error}"),
        })?;
        let sql = if self.is_sqlite() {
            "INSERT INTO vexil_flag_defaults (flag_key, value, declared_at) \
             SELECT key, value, strftime('%Y-%m-%d %H:%M:%f', 'now') FROM json_each($1) WHERE true \
             ON CONFLICT (flag_key) DO UPDATE SET value = excluded.value, declared_at = excluded.declared_at \
             WHERE vexil_flag_defaults.value <> excluded.value"
        } else {
            "INSERT INTO vexil_flag_defaults (flag_key, value, declared_at) \
             SELECT key, CASE WHEN value = 'true' THEN 1 ELSE 0 END, now() \
             FROM jsonb_each_text(CAST($1 AS JSONB)) \
             ON CONFLICT (flag_key) DO UPDATE SET value = excluded.value, declared_at = excluded.declared_at \
             WHERE vexil_flag_defaults.value <> excluded.value"
        };
        on_pool!(self, |pool, DB| {
            sqlx::query(sql).bind(&json).execute(pool).await?;
        });
        Ok(())
    }

    /// The recorded defaults, by flag key.
    pub async fn declared_defaults(&self) -> Result<BTreeMap<String, bool>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool, DB| {
            sqlx::query_as("SELECT flag_key, CAST(value AS BIGINT) FROM vexil_flag_defaults")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(key, value)| (key, value == 1))
            .collect())
    }
}
