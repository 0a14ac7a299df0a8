//! `watch`: an application that links the library and prints, one JSON line each,
//! when its flags are ready and every change it applies afterwards, with the wall
//! clock time it applied it. The multi-process test and `cargo xtask propagation`
//! run several of these side by side.
//!
//! `VEXIL_ENV=prod DATABASE_URL=… VEXIL_FLAGS=… cargo run -p vexil --example watch`

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), vexil::Error> {
    let flags = vexil::Flags::from_env().await?;
    let mut changes = flags.subscribe();
    let mut health = flags.watch_health();
    // Ready once the database has answered: the values are its own from here on.
    let _ = health.wait_for(|h| h.source_up).await;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, r#"{{"ready":true,"pid":{}}}"#, std::process::id());
    let _ = out.flush();
    while let Ok(applied) = changes.recv().await {
        let line = format!(
            r#"{{"flag":"{}","on":{},"source":"{}","at":{}}}"#,
            applied.flag_key,
            applied.on,
            applied.source.as_str(),
            now_nanos()
        );
        // The reader went away: stop.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}
