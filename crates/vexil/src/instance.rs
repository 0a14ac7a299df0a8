//! This process as the other side sees it: its identity, its env layer, and which
//! change of each flag it holds, reported to `vexil_instances` by the heartbeat. The
//! report answers "has every process seen my flip?" (`vexil audit show ID`) and tells
//! the console each env's `FLAG_*` variables.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vexil_core::reported::MASTER_KEY;
use vexil_core::{EnvSnapshot, EnvVar, FlagSet, VarState};
use vexil_store::{InstanceReport, Receipt, Transport};

/// Who this process is, fixed when its handle starts.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: i64,
    pub(crate) application: String,
    pub(crate) started_at: DateTime<Utc>,
}

/// The master switch and each declared flag's variable, parsed: `on`, `off` or
/// `invalid`; a flag whose variable is unset is left out, the master switch never.
pub(crate) fn env_layer(flags: &FlagSet, env_vars: &EnvSnapshot) -> BTreeMap<String, String> {
    let mut layer = BTreeMap::new();
    let master = VarState::of(env_vars.master_var().map(EnvVar::value));
    layer.insert(MASTER_KEY.to_owned(), master.as_str().to_owned());
    for decl in flags.iter() {
        if let Some(var) = env_vars.get(decl.key()) {
            let state = VarState::of(Some(var.value()));
            layer.insert(decl.key().to_string(), state.as_str().to_owned());
        }
    }
    layer
}

/// The report as of `now`.
pub(crate) fn report(
    identity: &Identity,
    env: &str,
    env_layer: &BTreeMap<String, String>,
    receipts: impl Iterator<Item = (String, Receipt)>,
    now: DateTime<Utc>,
) -> InstanceReport {
    InstanceReport {
        id: identity.id.clone(),
        env: env.to_owned(),
        host: identity.host.clone(),
        pid: identity.pid,
        application: identity.application.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: identity.started_at,
        last_seen: now,
        live: true,
        env_layer: env_layer.clone(),
        applied: receipts.collect(),
        language: "rust".to_owned(),
        transport: Transport::Database,
        change_id: None,
    }
}
