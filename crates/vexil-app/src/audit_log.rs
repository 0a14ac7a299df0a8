//! Reading the audit log for the console's audit page and `GET /api/v1/audit`: a page
//! of rows newest first, for an actor whose role may read it, and the names its
//! filters can take (`App::audit_names`), for the console's suggestions.

use vexil_core::{Action, FlagKey, text};
use vexil_store::{AuditFilter, AuditRow};

use crate::app::{Actor, App};
use crate::error::AppError;

/// What the audit log's flag and account filters can be given, each sorted: the
/// declared flag keys and every account name (disabled ones too, whose rows stay).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditNames {
    pub flags: Vec<String>,
    pub accounts: Vec<String>,
}

impl App {
    /// The rows `filter` selects, newest first, for `actor` (the role that reads the
    /// audit log: `docs/roles.md`).
    pub async fn audit_page(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRow>, AppError> {
        actor.may(Action::ViewAudit)?;
        check_audit_filter(filter)?;
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
        Ok(self.db.audit_page(&filter).await?)
    }

    /// Audit row `id`, for `actor`, if there is one.
    pub async fn audit_entry(&self, actor: &Actor, id: i64) -> Result<Option<AuditRow>, AppError> {
        actor.may(Action::ViewAudit)?;
        self.audit_row(id).await
    }

    /// The flag keys and account names to suggest in the audit log's filters, for
    /// `actor`: the same role that reads the log, whose rows name them anyway.
    pub async fn audit_names(&self, actor: &Actor) -> Result<AuditNames, AppError> {
        actor.may(Action::ViewAudit)?;
        let mut flags: Vec<String> = self
            .flags()
            .iter()
            .map(|decl| decl.key().as_str().to_owned())
            .collect();
        flags.sort();
        let mut accounts: Vec<String> = self
            .db
            .users()
            .await?
            .into_iter()
            .map(|user| user.name)
            .collect();
        accounts.sort();
        Ok(AuditNames { flags, accounts })
    }
}

/// A filter's texts, each free text from a door (`vexil_core::text`): a NUL would fail
/// the query on PostgreSQL. Named as the API and `vexil audit` name them; the
/// console's audit page checks its own fields first, under its own names.
/// `App::audit_page` checks it; `vexil audit`, which reads the store with database
/// access as its permission, calls it itself.
pub fn check_audit_filter(filter: &AuditFilter) -> Result<(), AppError> {
    let texts = [
        ("action", &filter.action),
        ("flag", &filter.flag),
        ("flag", &filter.flag_contains),
        ("account", &filter.account),
        ("actor", &filter.actor),
        ("account", &filter.party_contains),
        ("env", &filter.env),
    ];
    for (field, value) in texts {
        if let Some(value) = value {
            text::check(field, value)?;
        }
    }
    Ok(())
}
