//! Console sessions: stored by id hash, never returned once expired, created only
//! once per id hash, updated only while they exist, deleted one by one or in bulk
//! when expired.

use chrono::TimeDelta;
use vexil_core::Clock;
use vexil_store::Backend;
use vexil_testkit::{TestClock, TestDb};

use crate::both;

async fn sessions_live_until_they_expire_or_are_deleted(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = &test_db.db;
    let now = TestClock::fixed().now();
    let (a, b) = ([1u8; 32], [2u8; 32]);

    assert!(
        db.create_session(&a, r#"{"user":1}"#, now + TimeDelta::minutes(30), None)
            .await
            .unwrap()
    );
    assert!(
        !db.create_session(&a, r#"{"user":2}"#, now + TimeDelta::minutes(30), None)
            .await
            .unwrap(),
        "an id hash is taken once"
    );
    assert_eq!(
        db.load_session(&a, now).await.unwrap(),
        Some(vexil_store::StoredSession {
            data: r#"{"user":1}"#.to_owned(),
            expires_at: now + TimeDelta::minutes(30),
            mac: None
        })
    );
    assert_eq!(db.load_session(&b, now).await.unwrap(), None);

    db.save_session(
        &a,
        r#"{"user":1,"elevated":true}"#,
        now + TimeDelta::minutes(40),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        db.load_session(&a, now + TimeDelta::minutes(35))
            .await
            .unwrap()
            .map(|s| s.data)
            .as_deref(),
        Some(r#"{"user":1,"elevated":true}"#)
    );
    assert_eq!(
        db.load_session(&a, now + TimeDelta::minutes(40))
            .await
            .unwrap(),
        None,
        "expired at its expiry"
    );

    // Saving a session that does not exist (deleted, rotated away) creates nothing.
    db.save_session(&b, "{}", now + TimeDelta::minutes(5), None)
        .await
        .unwrap();
    assert_eq!(db.load_session(&b, now).await.unwrap(), None);
    assert!(
        db.create_session(&b, "{}", now + TimeDelta::minutes(5), None)
            .await
            .unwrap()
    );
    assert_eq!(
        db.delete_expired_sessions(now + TimeDelta::minutes(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(db.load_session(&b, now).await.unwrap(), None, "deleted");
    db.delete_session(&a).await.unwrap();
    assert_eq!(db.load_session(&a, now).await.unwrap(), None);
}
both!(sessions_live_until_they_expire_or_are_deleted);
