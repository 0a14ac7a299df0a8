//! `Snapshot`: the resolved value of every declared flag for this process's env,
//! immutable once built. `is_on` reads one through an `ArcSwap`; the refresher builds
//! a new one for every change and swaps it in whole.

use std::time::SystemTime;

use foldhash::{HashMap, HashMapExt};
use vexil_core::{EnvSnapshot, FlagSet, MasterSwitch, Source, resolve};

/// Where the snapshot's DB layer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read from the database at `read_at` (the last successful read of any kind).
    Database { read_at: SystemTime },
    /// The database has not answered since this process started: values come from
    /// the `FLAG_*` variables and the YAML defaults, which a DB row may contradict.
    Fallback,
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
    /// Every declared flag resolved against `rows` (this env's DB rows, by key), this
    /// process's variables and the master switch, as `vexil_core::resolve` does for
    /// the console and the CLI.
    pub(crate) fn build(
        flags: &FlagSet,
        rows: &HashMap<Box<str>, bool>,
        env_vars: &EnvSnapshot,
        origin: Origin,
    ) -> Snapshot {
        let master: MasterSwitch = env_vars.master_switch();
        let mut values = HashMap::with_capacity(flags.len());
        for decl in flags.iter() {
            let row = rows.get(decl.key().as_str()).copied();
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
