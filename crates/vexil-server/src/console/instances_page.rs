//! `GET /console/instances`: the fleet, each env's live processes as they
//! report themselves, with where the processes of one env drift apart (master
//! switch, a flag's variable, a row's change not applied everywhere) summarised and
//! marked. Read-only; `App::fleet` decides the drift, this page only formats it.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use vexil_app::{EnvFleet, FleetInstance};
use vexil_core::Action;

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome, utc};
use crate::console::session::Operator;
use crate::state::ServerState;

struct EnvView {
    env: String,
    /// `3 live instances; drift: …`.
    summary: String,
    drift: bool,
    instances: Vec<InstanceView>,
}

struct InstanceView {
    id: String,
    application: String,
    host: String,
    pid: i64,
    /// `python 0.1.0, follows the server`: what it runs, and how it reaches vexil.
    runs: String,
    started: String,
    /// `4 s ago`, and the time itself for the cell's title.
    last_seen: String,
    last_seen_utc: String,
    master: &'static str,
    master_drift: bool,
    vars: Vec<VarView>,
    last_applied: Option<AppliedView>,
    /// `dark_mode: newest change not applied (holds #5)`, for each row whose newest
    /// change it lacks.
    behind: Vec<String>,
}

struct VarView {
    variable: String,
    state: &'static str,
    drift: bool,
}

struct AppliedView {
    flag: String,
    audit_id: i64,
    /// The audit log from that row on.
    link: String,
    when: String,
    when_utc: String,
}

#[derive(Template)]
#[template(path = "instances.html")]
struct InstancesPage {
    chrome: Chrome,
    envs: Vec<EnvView>,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
) -> Result<Response, ConsoleError> {
    operator.actor.may(Action::ViewFlags)?;
    let fleet = state.app.fleet().await?;
    // The reports are stamped by the database's clock: "how long ago" is read on it,
    // not on this host's (which may be skewed, or a test's).
    let now = state
        .app
        .database_clock()
        .await
        .map_err(vexil_app::AppError::from)?;
    let page = InstancesPage {
        chrome: operator.chrome("instances"),
        envs: fleet.iter().map(|env| env_view(env, now)).collect(),
    };
    Ok(page::html(StatusCode::OK, &page))
}

fn env_view(fleet: &EnvFleet, now: DateTime<Utc>) -> EnvView {
    let master_drift = fleet.master_drifts();
    EnvView {
        env: fleet.env.clone(),
        summary: fleet.to_string(),
        drift: !fleet.agrees(),
        instances: fleet
            .instances
            .iter()
            .map(|instance| instance_view(instance, master_drift, now))
            .collect(),
    }
}

/// What a process runs and how it reaches vexil, in words.
fn runs(report: &vexil_store::InstanceReport) -> String {
    let how = match report.transport {
        vexil_store::Transport::Database => "reads the database",
        vexil_store::Transport::Server => "follows the server",
    };
    format!("{} {}, {how}", report.language, report.version)
}

fn instance_view(instance: &FleetInstance, master_drift: bool, now: DateTime<Utc>) -> InstanceView {
    let report = &instance.report;
    InstanceView {
        id: report.id.clone(),
        application: report.application.clone(),
        host: report.host.clone(),
        pid: report.pid,
        runs: runs(report),
        started: utc(report.started_at),
        last_seen: ago(now, report.last_seen),
        last_seen_utc: utc(report.last_seen),
        master: instance.master.as_str(),
        master_drift,
        vars: instance
            .vars
            .iter()
            .map(|var| VarView {
                variable: var.variable.clone(),
                state: var.state.as_str(),
                drift: var.drift,
            })
            .collect(),
        last_applied: instance.last_applied.as_ref().map(|(flag, receipt)| {
            let before = receipt.audit_id.saturating_add(1).to_string();
            AppliedView {
                flag: flag.clone(),
                audit_id: receipt.audit_id,
                // A page of the flag's history that starts at this row.
                link: format!(
                    "/console/audit?{}#audit-{}",
                    page::query(&[("flag", Some(flag)), ("before", Some(&before))]),
                    receipt.audit_id
                ),
                when: ago(now, receipt.applied_at),
                when_utc: utc(receipt.applied_at),
            }
        }),
        behind: instance
            .behind
            .iter()
            .map(|(flag, holds)| match holds {
                Some(id) => format!("{flag}: newest change not applied (holds #{id})"),
                None => format!("{flag}: newest change not applied (holds no row)"),
            })
            .collect(),
    }
}

/// How long before `now` `at` was: `4 s ago`, `3 min ago`, `2 h ago`, `5 d ago`. A time
/// after `now` (the database's clock ahead of this process's) reads `in 4 s`.
fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let amount = seconds.unsigned_abs();
    let span = match amount {
        0..60 => format!("{amount} s"),
        60..3600 => format!("{} min", amount / 60),
        3600..86_400 => format!("{} h", amount / 3600),
        _ => format!("{} d", amount / 86_400),
    };
    if seconds < 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::ago;

    #[test]
    fn times_read_relative_to_now() {
        let now = chrono::DateTime::UNIX_EPOCH + TimeDelta::days(400);
        for (before, says) in [
            (0, "0 s ago"),
            (4, "4 s ago"),
            (59, "59 s ago"),
            (60, "1 min ago"),
            (3599, "59 min ago"),
            (7200, "2 h ago"),
            (86_400 * 3 + 5, "3 d ago"),
            (-4, "in 4 s"),
        ] {
            assert_eq!(ago(now, now - TimeDelta::seconds(before)), says, "{before}");
        }
    }
}
