//! The library against real databases: a `Flags` handle follows direct SQL and
//! vexil's own writes, survives the database going away, and stops with its last
//! clone. Every wait is for an event (an applied change, a health change) with a
//! deadline, never a sleep.

mod feed;
mod outage;
mod processes;

use std::time::Duration;

use tokio::sync::broadcast;
use vexil::{Applied, Flags, Health};
use vexil_core::{EnvSnapshot, FlagSet};
use vexil_testkit::TestDb;

/// Long enough for a loaded CI machine; the figures that matter are in BENCHMARKS.md.
const DEADLINE: Duration = Duration::from_secs(20);

fn example_flags() -> FlagSet {
    FlagSet::parse(
        "feature_flags.yaml",
        include_bytes!("../../../../examples/feature_flags.yaml"),
    )
    .unwrap()
}

/// The master switch on, as in the runbook once the DB layer is live.
fn db_layer_on() -> EnvSnapshot {
    EnvSnapshot::capture([("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")])
}

/// A handle for prod on `url`, started, and waited for until the database answered.
async fn started(builder: vexil::Builder) -> Flags {
    let flags = builder.start().await.unwrap();
    wait_health(&flags, |h| h.source_up).await;
    flags
}

fn builder(test_db: &TestDb) -> vexil::Builder {
    Flags::builder()
        .env("prod")
        .flag_set(example_flags())
        .env_vars(db_layer_on())
        .database_url(test_db.url_string())
}

async fn wait_health(flags: &Flags, ready: impl Fn(&Health) -> bool) {
    let mut health = flags.watch_health();
    tokio::time::timeout(DEADLINE, health.wait_for(|h| ready(h)))
        .await
        .unwrap_or_else(|_| panic!("health never got there; it is {:?}", flags.health()))
        .unwrap();
}

/// The next change applied to `key`.
async fn next_applied(changes: &mut broadcast::Receiver<Applied>, key: &str) -> Applied {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let applied = changes.recv().await.unwrap();
            if applied.flag_key == key {
                return applied;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no change to {key} applied"))
}

/// The runbook's Option A, on any flag and value.
fn runbook_update(flag: &str, value: u8) -> String {
    format!(
        "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('{flag}', 'prod', {value}) \
         ON CONFLICT (flag_key, env) DO UPDATE SET value = excluded.value"
    )
}
