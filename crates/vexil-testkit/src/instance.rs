//! A live instance: a process linking the library (a `vexil::Flags` handle in the
//! test's own process) that reports itself every 100 ms, as the fleet tools, the
//! doctor and reconciliation see it. Tests wait for its reports, never sleep.

use std::time::{Duration, SystemTime};

use vexil_core::EnvSnapshot;

use crate::example_flags;

/// How long a report may take on a loaded CI machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// A live instance of `env` on the database at `database_url`, with the example
/// flags file, application `web` and these variables; returned once its first report
/// is in.
pub async fn live_instance(database_url: String, env: &str, vars: &[(&str, &str)]) -> vexil::Flags {
    start_instance(
        vexil::Flags::builder()
            .env(env)
            .flag_set(example_flags())
            .env_vars(EnvSnapshot::capture(vars.iter().copied()))
            .database_url(database_url)
            .application("web"),
    )
    .await
}

/// Starts `builder` reporting every 100 ms and returns it once its first report is in.
pub async fn start_instance(builder: vexil::Builder) -> vexil::Flags {
    let instance = builder
        .heartbeat(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    reported_after(&instance, SystemTime::UNIX_EPOCH).await;
    instance
}

/// Waits until `instance` has written a report after `after` (the heartbeat's own
/// event, `Health::reported_at`).
pub async fn reported_after(instance: &vexil::Flags, after: SystemTime) {
    let mut health = instance.watch_health();
    tokio::time::timeout(
        DEADLINE,
        health.wait_for(|h| h.reported_at.is_some_and(|at| at > after)),
    )
    .await
    .expect("the process never reported")
    .unwrap();
}
