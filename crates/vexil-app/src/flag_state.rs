//! `App::flag_states`: every declared flag in each env, resolved as this process
//! resolves it, with the row behind it. What `/console/flags` and `vexil flags list`
//! show.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use vexil_core::reported::MASTER_KEY;
use vexil_core::{Drift, Env, MasterSwitch, Risk, Source, resolve};
use vexil_store::FlagRow;

use crate::app::App;
use crate::error::AppError;

/// One flag in one env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagState {
    pub key: String,
    pub env: Env,
    pub risk: Risk,
    pub description: String,
    pub value: bool,
    pub source: Source,
    /// The DB row's value, whether or not the master switch lets it count.
    pub row_value: Option<bool>,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The audit row of the row's last change by vexil (its reason, its receipt).
    pub audit_id: Option<i64>,
    /// `FLAG_X=1`: the flag's variable as this env has it, if set (in force or not).
    pub env_var: Option<String>,
    /// `FLAG_X=1` when a row makes the variable dormant.
    pub dormant_env_var: Option<String>,
    /// `FLAG_X='maybe' (invalid: …)` when the variable holds no valid spelling.
    pub invalid_env_var: Option<String>,
    /// The live processes of this env disagree about the flag's variable.
    pub drift: Option<Drift>,
}

impl FlagState {
    /// The value a flip starts from and a mark judges: the row, whatever the master
    /// switch (a flip writes the row), else the value in force (the variable or the
    /// default, which no row hides). It differs from `value` only where a row is not
    /// in effect: the console shows both there.
    pub fn row_or_value(&self) -> bool {
        self.row_value.unwrap_or(self.value)
    }

    /// A row is there but does not decide the value (the master switch is off).
    pub fn row_not_in_effect(&self) -> bool {
        self.row_value.is_some() && self.source != Source::Db
    }
}

/// Every flag's state, and the rows that name no declared flag (to be cleaned up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagStates {
    pub states: Vec<FlagState>,
    pub undeclared_rows: Vec<FlagRow>,
    /// Envs whose live processes disagree about the master switch.
    pub master_drift: Vec<(Env, Drift)>,
    /// Whether DB rows decide values in each env shown (`FLAG_CONSOLE_FEATURE_FLAGS_DB`
    /// as this process, or the env's live processes, have it).
    pub masters: Vec<(Env, MasterSwitch)>,
}

impl App {
    /// Each declared flag in `only` (or every env), in file order then env order.
    pub async fn flag_states(&self, only: Option<&Env>) -> Result<FlagStates, AppError> {
        let rows = self.db.flag_rows().await?;
        let by_pair: HashMap<(&str, &str), &FlagRow> = rows
            .iter()
            .map(|row| ((row.flag_key.as_str(), row.env.as_str()), row))
            .collect();
        let mut layers = Vec::new();
        for env in self
            .envs
            .iter()
            .filter(|env| only.is_none_or(|only| only == *env))
        {
            layers.push((env, self.env_layer(env).await?));
        }
        let mut states = Vec::new();
        let flags = self.flags.load();
        for decl in flags.iter() {
            for (env, layer) in &layers {
                let row = by_pair.get(&(decl.key().as_str(), env.as_str()));
                let resolved = resolve(decl, row.map(|r| r.value), &layer.snapshot, layer.master);
                states.push(FlagState {
                    key: decl.key().to_string(),
                    env: (*env).clone(),
                    risk: decl.risk(),
                    description: decl.description().to_owned(),
                    value: resolved.value,
                    source: resolved.source,
                    row_value: row.map(|r| r.value),
                    updated_by: row.and_then(|r| r.updated_by.clone()),
                    updated_at: row.map(|r| r.updated_at),
                    audit_id: row.and_then(|r| r.audit_id),
                    env_var: layer.snapshot.get(decl.key()).map(ToString::to_string),
                    dormant_env_var: resolved.dormant_env_var.map(ToString::to_string),
                    invalid_env_var: resolved.invalid_env_var.map(ToString::to_string),
                    drift: layer
                        .drift
                        .iter()
                        .find(|d| d.key == decl.key().as_str())
                        .cloned(),
                });
            }
        }
        let master_drift = layers
            .iter()
            .flat_map(|(env, layer)| {
                layer
                    .drift
                    .iter()
                    .filter(|d| d.key == MASTER_KEY)
                    .map(|d| ((*env).clone(), d.clone()))
            })
            .collect();
        let masters = layers
            .iter()
            .map(|(env, layer)| ((*env).clone(), layer.master))
            .collect();
        let undeclared_rows = rows
            .iter()
            .filter(|row| flags.get(&row.flag_key).is_none())
            .cloned()
            .collect();
        Ok(FlagStates {
            states,
            undeclared_rows,
            master_drift,
            masters,
        })
    }

    /// Whether DB rows count for this process (`FLAG_CONSOLE_FEATURE_FLAGS_DB`).
    pub fn master_switch(&self) -> MasterSwitch {
        self.env_snapshot.master_switch()
    }
}
