//! Reading the audit log for the console's audit page and `GET /api/v1/audit`: a page
//! of rows newest first, for an actor whose role may read it.

use vexil_core::{Action, FlagKey};
use vexil_store::{AuditFilter, AuditRow};

use crate::app::{Actor, App};
use crate::error::AppError;

impl App {
    /// The rows `filter` selects, newest first, for `actor` (the role that reads the
    /// audit log: `docs/roles.md`).
    pub async fn audit_page(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRow>, AppError> {
        actor.may(Action::ViewAudit)?;
        Ok(self.db.audit_page(filter).await?)
    }

    /// The newest `limit` rows about flag `key` (its flips, marks and promotions),
    /// newest first, for `actor`: the flag's own history.
    pub async fn flag_history(
        &self,
        actor: &Actor,
        key: &FlagKey,
        limit: u32,
    ) -> Result<Vec<AuditRow>, AppError> {
        actor.may(Action::ViewAudit)?;
        let filter = AuditFilter {
            flag: Some(key.to_string()),
            limit,
            ..AuditFilter::default()
        };
        let rows = self.db.audit_page(&filter).await?;
        // The filter's match is the store's business; the history is this flag's.
        Ok(rows
            .into_iter()
            .filter(|row| row.target_id == key.as_str())
            .collect())
    }

    /// Audit row `id`, for `actor`, if there is one.
    pub async fn audit_entry(&self, actor: &Actor, id: i64) -> Result<Option<AuditRow>, AppError> {
        actor.may(Action::ViewAudit)?;
        self.audit_row(id).await
    }
}
