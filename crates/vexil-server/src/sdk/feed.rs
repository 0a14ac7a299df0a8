//! `follow`: the server's one reader of the database's change feed. It keeps the hub
//! current (every subscriber's events come from here), marks the API's flag cache
//! stale on every change, sends the streams' keep-alives, and re-reads which client
//! keys are revoked so that their open streams end.
//!
//! One `LISTEN` connection (PostgreSQL) or one data-version poll (SQLite) per server,
//! however many subscribers; a full read every `SdkConfig::resync_every` in case a
//! notification was lost. After a failed read, reads are retried with a capped
//! backoff, and the first one that succeeds is announced to every subscriber as a
//! fresh snapshot (they may have missed changes meanwhile); until then they keep the
//! last state they were sent.
//!
//! The first full read waits until the feed listens, so no change falls between them.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use vexil_core::message::error_chain;
use vexil_store::FeedEvent;

use crate::state::ServerState;

/// How often the change feed looks for commits on SQLite (PostgreSQL notifies).
/// Shorter than a linked process's 100 ms: the server is one process for the whole
/// fleet, a look is `PRAGMA data_version` on its own connection (no page of the file
/// is read), and every following process waits on it (BENCHMARKS.md: remote-mode
/// propagation).
const FEED_POLL: Duration = Duration::from_millis(20);

/// How long the first full read waits for the feed to listen.
const FIRST_READ_FALLBACK: Duration = Duration::from_secs(2);

/// Retry delays after failed reads.
const BACKOFF: [Duration; 5] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// Feeds `state`'s hub until the server stops (the task is aborted).
pub(crate) async fn follow(state: ServerState) {
    let hub = &state.hub;
    let app = &state.app;
    let config = hub.config().clone();
    let mut feed = app.change_feed(FEED_POLL);
    // The feed's first `Resync` says it is listening; any later one, that it lost
    // its connection and may have missed changes.
    let mut listening = false;
    // The first full read waits for the feed to listen (its first `Resync`): a read
    // before that could miss a change made in between, which the feed would then not
    // name either (a subscriber would get a second snapshot rather than the change).
    // The timer is the safety net, for a feed that cannot listen (a pooler).
    let mut next_full = Instant::now() + FIRST_READ_FALLBACK.min(config.resync_every);
    let mut failures = 0usize;
    // The first read, and the first after a failure or a lost feed, are announced.
    let mut announce = true;
    let mut keep_alive = interval(config.keep_alive);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut revocations = interval(state.api.token_ttl.max(Duration::from_millis(100)));
    revocations.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = feed.events.recv() => match event {
                Some(FeedEvent::Resync) => {
                    announce |= std::mem::replace(&mut listening, true);
                    FeedEvent::Resync
                }
                Some(event) => event,
                None => {
                    // The pump ended (it reconnects by itself; this is a last resort).
                    tracing::warn!("the change feed ended; starting it again");
                    feed = app.change_feed(FEED_POLL);
                    listening = false;
                    announce = true;
                    continue;
                }
            },
            () = sleep_until(next_full) => FeedEvent::Resync,
            _ = keep_alive.tick() => {
                hub.keep_alive();
                continue;
            }
            _ = revocations.tick() => {
                match app.revoked_client_keys().await {
                    Ok(ids) => hub.set_revoked(ids.into_iter().collect::<BTreeSet<i64>>()),
                    Err(error) => tracing::debug!(error = %error_chain(&error), "cannot read revoked client keys"),
                }
                continue;
            }
        };
        // Whatever changed, the API's cached flag lists are stale.
        state.flag_cache.invalidate();
        let result = match &event {
            FeedEvent::Resync => hub.load(app, announce).await,
            FeedEvent::Changed(change) => hub.apply(app, change).await,
            FeedEvent::Committed => hub.catch_up(app).await,
        };
        match result {
            Ok(()) if matches!(event, FeedEvent::Resync) => {
                next_full = Instant::now() + config.resync_every;
                failures = 0;
                announce = false;
            }
            Ok(()) => {}
            Err(error) => {
                if failures == 0 {
                    tracing::error!(
                        error = %error_chain(&error),
                        "the hub cannot read the database; subscribers keep the last state they were sent until it answers"
                    );
                }
                announce = true;
                next_full = Instant::now() + BACKOFF[failures.min(BACKOFF.len() - 1)];
                failures += 1;
            }
        }
    }
}
