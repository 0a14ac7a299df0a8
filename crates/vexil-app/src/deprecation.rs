//! `App::deprecation`: the runbook's deprecation table, gathered from
//! what vexil holds (the DB rows, the audit log's flips, each live process's report
//! of its `FLAG_*` variables) and judged by `vexil_core::deprecation`. It proposes;
//! the operator removes the variable.
//!
//! The flips are counted per flag and env by `Db::flip_counts`: every
//! `console.flag.flip` row, vexil's or direct SQL's, that changed something. Each
//! process's master switch counts: one off the DB layer (Option B) keeps its
//! variable in use. The verdict is given per env and per application (Heroku config
//! is per app).

use std::collections::HashMap;

use vexil_core::Env;
use vexil_core::VarState;
use vexil_core::deprecation::{Evidence, Reported, Verdict, verdicts, verdicts_by_app};
use vexil_core::reported::MASTER_KEY;

use vexil_core::message::one_line;

use crate::app::App;
use crate::error::AppError;
use crate::instances::{GONE_AFTER, process_name, reported_state};

/// One declared flag's variable, judged in each env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagDeprecation {
    pub key: String,
    /// `FLAG_<KEY>`.
    pub variable: String,
    /// Each env's verdict with the evidence behind it.
    pub envs: Vec<(Verdict, Evidence)>,
    /// Each application's verdict in each env, with its processes' evidence.
    pub apps: Vec<(Verdict, Evidence)>,
}

impl App {
    /// Every declared flag, in file order, judged in every env (the removal criterion
    /// spans them all); `only` keeps one env's lines in the answer.
    pub async fn deprecation(&self, only: Option<&Env>) -> Result<Vec<FlagDeprecation>, AppError> {
        let rows: HashMap<(String, String), bool> = self
            .db
            .flag_rows()
            .await?
            .into_iter()
            .map(|r| ((r.flag_key, r.env), r.value))
            .collect();
        let flips: HashMap<(String, String), u64> = self
            .db
            .flip_counts()
            .await?
            .into_iter()
            .map(|f| ((f.flag, f.env), f.count))
            .collect();
        let mut reports = Vec::new();
        for env in self.envs.iter() {
            let live = self
                .db
                .instances(Some(env.as_str()), GONE_AFTER, GONE_AFTER)
                .await?;
            reports.push((env.clone(), live));
        }
        let flags = self.flags.load();
        let mut table = Vec::new();
        for decl in flags.iter() {
            let key = decl.key().as_str();
            let evidence: Vec<(Env, Evidence)> = reports
                .iter()
                .map(|(env, live)| {
                    let pair = (key.to_owned(), env.as_str().to_owned());
                    let reported = live
                        .iter()
                        .map(|i| Reported {
                            process: process_name(i),
                            app: one_line(&i.application),
                            db_layer: reported_state(i, MASTER_KEY) == VarState::On,
                            var: reported_state(i, key),
                        })
                        .collect();
                    let evidence = Evidence {
                        row: rows.get(&pair).copied(),
                        flips: flips.get(&pair).copied().unwrap_or(0),
                        default: decl.default(),
                        reported,
                    };
                    (env.clone(), evidence)
                })
                .collect();
            let judged = verdicts(&evidence);
            let apps = verdicts_by_app(&evidence)
                .into_iter()
                .filter(|(verdict, _)| only.is_none_or(|env| *env == verdict.env))
                .collect();
            table.push(FlagDeprecation {
                apps,
                key: key.to_owned(),
                variable: decl.key().env_var_name(),
                envs: judged
                    .into_iter()
                    .zip(evidence.into_iter().map(|(_, e)| e))
                    .filter(|(verdict, _)| only.is_none_or(|env| *env == verdict.env))
                    .collect(),
            });
        }
        Ok(table)
    }
}
