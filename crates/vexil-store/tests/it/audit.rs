//! The audit log: immutable in the database itself, and read back in pages.

use chrono::TimeDelta;
use vexil_core::Clock;
use vexil_store::{AuditFilter, Backend};
use vexil_testkit::{TestClock, TestDb};

use crate::both;
use crate::flags::write;

async fn the_audit_log_cannot_be_changed(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    write(
        &test_db.db,
        "a",
        "prod",
        true,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    let update = test_db
        .execute("UPDATE console_audit_log SET action = 'nothing'")
        .await
        .unwrap_err();
    assert!(
        update.contains("console_audit_log is append-only: audit rows cannot be updated"),
        "{update}"
    );
    let delete = test_db
        .execute("DELETE FROM console_audit_log")
        .await
        .unwrap_err();
    assert!(
        delete.contains("console_audit_log is append-only: audit rows cannot be deleted"),
        "{delete}"
    );
    if backend == Backend::Postgres {
        let truncate = test_db
            .execute("TRUNCATE console_audit_log CASCADE")
            .await
            .unwrap_err();
        assert!(
            truncate.contains("console_audit_log is append-only: audit rows cannot be truncated"),
            "{truncate}"
        );
    }
    let page = test_db
        .db
        .audit_page(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (page.len(), page[0].action.as_str()),
        (1, "console.flag.flip")
    );
}
both!(the_audit_log_cannot_be_changed);

async fn pages_filter_and_go_newest_first(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let clock = TestClock::fixed();
    let start = clock.now();
    for (i, flag) in ["a", "b", "a", "c", "a"].into_iter().enumerate() {
        clock.advance(TimeDelta::minutes(1));
        write(&test_db.db, flag, "prod", i % 2 == 0, "alice", clock.now()).await;
    }
    let page = |filter: AuditFilter| {
        let db = test_db.db.clone();
        async move { db.audit_page(&filter).await.unwrap() }
    };
    let all = page(AuditFilter {
        limit: 50,
        ..AuditFilter::default()
    })
    .await;
    let ids: Vec<i64> = all.iter().map(|row| row.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(all.len(), 5);

    let only_a = page(AuditFilter {
        flag: Some("a".into()),
        limit: 50,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(only_a.len(), 3);
    assert!(only_a.iter().all(|row| row.target_id == "a"));

    let first_two = page(AuditFilter {
        flag: Some("a".into()),
        limit: 2,
        ..AuditFilter::default()
    })
    .await;
    let next = page(AuditFilter {
        flag: Some("a".into()),
        limit: 2,
        before: Some(first_two[1].id),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, only_a[2].id);

    let window = page(AuditFilter {
        since: Some(start + TimeDelta::minutes(2)),
        until: Some(start + TimeDelta::minutes(4)),
        limit: 50,
        ..AuditFilter::default()
    })
    .await;
    let times: Vec<i64> = window
        .iter()
        .map(|row| (row.created_at - start).num_minutes())
        .collect();
    assert_eq!(times, [3, 2], "since is inclusive, until exclusive");

    let by_action = page(AuditFilter {
        action: Some("console.flag.promoted".into()),
        limit: 50,
        ..AuditFilter::default()
    })
    .await;
    assert!(by_action.is_empty());
    let by_nobody = page(AuditFilter {
        actor: Some("nobody".into()),
        limit: 50,
        ..AuditFilter::default()
    })
    .await;
    assert!(by_nobody.is_empty());
}
both!(pages_filter_and_go_newest_first);
