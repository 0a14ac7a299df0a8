//! The audit log: immutable in the database itself, and read back in pages.

use chrono::TimeDelta;
use vexil_core::Clock;
use vexil_store::{AuditFilter, Backend, NewAudit};
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

/// The console's flag and account boxes: a part of the name, in any case; `%`, `_`
/// and `\` typed there match only themselves.
async fn substring_filters_ignore_case_and_escape_wildcards(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let at = TestClock::fixed().now();
    for flag in ["dark_mode", "darkXmode", "pct%off", "back\\slash"] {
        write(&test_db.db, flag, "prod", true, "alice", at).await;
    }
    for name in ["Ops_1", "opsX1"] {
        let mut tx = test_db.db.begin_write().await.unwrap();
        tx.append_audit(&NewAudit {
            created_at: at,
            admin_id: None,
            action: "console.auth.sign_in_failed",
            target_type: "user",
            target_id: name.to_owned(),
            payload: serde_json::json!({"account": name, "from": "127.0.0.1"}),
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let targets = |filter: AuditFilter| {
        let db = test_db.db.clone();
        async move {
            let filter = AuditFilter {
                limit: 50,
                ..filter
            };
            let rows = db.audit_page(&filter).await.unwrap();
            rows.into_iter()
                .map(|row| row.target_id)
                .collect::<Vec<_>>()
        }
    };
    let flag = |text: &str| AuditFilter {
        flag_contains: Some(text.to_owned()),
        ..AuditFilter::default()
    };
    assert_eq!(targets(flag("DARK")).await, ["darkXmode", "dark_mode"]);
    assert_eq!(targets(flag("k_m")).await, ["dark_mode"], "_ is itself");
    assert_eq!(targets(flag("%")).await, ["pct%off"], "% is itself");
    assert_eq!(targets(flag("k\\s")).await, ["back\\slash"], "\\ is itself");
    assert!(targets(flag("ops")).await.is_empty(), "flags only");
    let party = |text: &str| AuditFilter {
        party_contains: Some(text.to_owned()),
        ..AuditFilter::default()
    };
    assert_eq!(targets(party("OPS")).await, ["opsX1", "Ops_1"]);
    assert_eq!(targets(party("s_1")).await, ["Ops_1"]);
}
both!(substring_filters_ignore_case_and_escape_wildcards);

/// `after` is the page just newer than a row, still newest first: the way back
/// from `before`.
async fn after_reads_the_page_just_newer(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let clock = TestClock::fixed();
    let mut ids = Vec::new();
    for value in [true, false, true, false, true] {
        clock.advance(TimeDelta::minutes(1));
        ids.push(write(&test_db.db, "a", "prod", value, "alice", clock.now()).await);
    }
    let page = |before: Option<i64>, after: Option<i64>| {
        let db = test_db.db.clone();
        async move {
            let filter = AuditFilter {
                before,
                after,
                limit: 2,
                ..AuditFilter::default()
            };
            let rows = db.audit_page(&filter).await.unwrap();
            rows.into_iter().map(|row| row.id).collect::<Vec<_>>()
        }
    };
    let older = page(Some(ids[3]), None).await;
    assert_eq!(older, [ids[2], ids[1]]);
    assert_eq!(page(None, Some(older[0])).await, [ids[4], ids[3]]);
    assert_eq!(page(None, Some(ids[0])).await, [ids[2], ids[1]]);
    assert_eq!(page(Some(ids[3]), Some(ids[0])).await, [ids[2], ids[1]]);
    assert!(page(None, Some(ids[4])).await.is_empty());
}
both!(after_reads_the_page_just_newer);
