//! `Snapshot`: the resolved value of every declared flag for this process's env,
//! immutable once built. `is_on` reads one through an `ArcSwap`; the refresher builds
//! a new one for every change and swaps it in whole.
//!
//! Each flag is resolved with `vexil_core::resolve` from the source's declarations,
//! then from the process's own flags file for flags the source does not declare.
//! `Origin` says where the rows came from: the database, a server, or the fallback
//! (variables and defaults) before the first read.

use std::time::SystemTime;

use foldhash::{HashMap, HashMapExt};
use vexil_core::{EnvSnapshot, FlagSet, MasterSwitch, Source, resolve};

use crate::flags::Rows;

/// Where the snapshot's DB layer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Read from the database at `read_at` (the last full read).
    Database { read_at: SystemTime },
    /// Sent by a `vexil serve` this process follows (remote mode), current as of
    /// `read_at` (the last full snapshot).
    Server { read_at: SystemTime },
    /// The source has not answered since this process started: values come from the
    /// `FLAG_*` variables and the YAML defaults, which a DB row may contradict.
    Fallback,
}

impl Origin {
    /// When the rows were last read whole; `None` for the fallback.
    pub fn read_at(self) -> Option<SystemTime> {
        match self {
            Origin::Database { read_at } | Origin::Server { read_at } => Some(read_at),
            Origin::Fallback => None,
        }
    }
}

/// One flag's effective value and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value {
    pub on: bool,
    pub source: Source,
}

#[derive(Debug)]
pub(crate) struct Snapshot {
    /// By flag key. foldhash: the keys are the flags file's, not an attacker's, and
    /// this lookup is `is_on`'s whole cost.
    pub(crate) values: HashMap<Box<str>, Value>,
    pub(crate) origin: Origin,
}

impl Snapshot {
    /// Every declared flag resolved against `rows` (this env's rows, by key), this
    /// process's variables and the master switch, as `vexil_core::resolve` does for
    /// the console and the CLI. The one resolution of both modes: only where `rows`
    /// come from differs.
    pub(crate) fn build(
        flags: &FlagSet,
        rows: &Rows,
        env_vars: &EnvSnapshot,
        origin: Origin,
    ) -> Snapshot {
        let master = match env_vars.master_switch() {
            MasterSwitch::Unset if rows.master_switch_default => MasterSwitch::On,
            master => master,
        };
        let declared = rows.declared.as_deref();
        let local = flags.iter().filter(|decl| {
            declared.is_none_or(|declared| declared.get(decl.key().as_str()).is_none())
        });
        let decls = declared.into_iter().flat_map(FlagSet::iter).chain(local);
        let mut values = HashMap::with_capacity(flags.len());
        for decl in decls {
            let row = rows.values.get(decl.key().as_str()).copied();
            let resolved = resolve(decl, row, env_vars, master);
            values.insert(
                Box::from(decl.key().as_str()),
                Value {
                    on: resolved.value,
                    source: resolved.source,
                },
            );
        }
        Snapshot { values, origin }
    }
}
