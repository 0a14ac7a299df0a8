//! Reading the audit log for the console's audit page and `GET /api/v1/audit`: a page
//! of rows newest first, for an actor whose role may read it.

use vexil_core::Action;
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
}
