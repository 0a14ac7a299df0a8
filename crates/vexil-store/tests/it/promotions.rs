//! `console_promotions` on both databases: one open promotion per flag (held by the
//! database), moves that happen only from the state that was read, and listings.

use chrono::TimeDelta;
use serde_json::json;
use vexil_core::Clock;
use vexil_store::{Backend, NewAudit, NewPromotion, PromotionMove};
use vexil_testkit::{TestClock, TestDb, audit_log};

use crate::both;

async fn one_open_promotion_per_flag_and_moves_from_the_state_read(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = &test_db.db;
    let now = TestClock::fixed().now();
    let new = NewPromotion {
        flag_key: "dark_mode",
        marked_by: "alice",
        marked_at: now,
        soak_ends_at: now + TimeDelta::hours(24),
        staging_audit_id: None,
        prod_audit_id: None,
    };
    let audit = |id: i64| NewAudit {
        created_at: now,
        admin_id: None,
        action: vexil_core::audit::FLAG_MARK_PROMOTE,
        target_type: vexil_core::audit::TARGET_FEATURE_FLAG,
        target_id: "dark_mode".to_owned(),
        payload: json!({"promotion": id}),
    };

    let mut tx = db.begin_write().await.unwrap();
    let (id, audit_id) = tx
        .insert_promotion(&new, audit)
        .await
        .unwrap()
        .expect("opened");
    tx.commit().await.unwrap();
    let mark_row = audit_log(db).await;
    assert_eq!(mark_row.len(), 1);
    assert_eq!(mark_row[0].id, audit_id);
    assert_eq!(mark_row[0].payload, json!({"promotion": id}));
    let mut tx = db.begin_write().await.unwrap();
    assert_eq!(
        tx.insert_promotion(&new, audit).await.unwrap(),
        None,
        "one open per flag"
    );
    assert_eq!(
        tx.open_promotion("dark_mode").await.unwrap().map(|p| p.id),
        Some(id)
    );
    assert_eq!(tx.open_promotion("new_checkout").await.unwrap(), None);
    tx.commit().await.unwrap();
    assert_eq!(
        audit_log(db).await.len(),
        1,
        "no audit row for a refused mark"
    );
    // Another flag is not affected.
    let mut tx = db.begin_write().await.unwrap();
    let other = NewPromotion {
        flag_key: "new_checkout",
        ..new.clone()
    };
    let (other_id, _) = tx
        .insert_promotion(&other, audit)
        .await
        .unwrap()
        .expect("opened");
    tx.commit().await.unwrap();

    let row = db.promotion(id).await.unwrap().unwrap();
    assert_eq!(
        (
            row.flag_key.as_str(),
            row.state.as_str(),
            row.marked_by.as_str()
        ),
        ("dark_mode", "pending", "alice")
    );
    assert_eq!(
        (row.marked_at, row.soak_ends_at),
        (now, now + TimeDelta::hours(24))
    );
    assert_eq!((row.approved_by, row.ended_at), (None, None));

    // Approve from pending; a second writer that also read "pending" moves nothing.
    let approve = PromotionMove {
        from: "pending",
        to: "approved",
        approved_by: Some("bob"),
        approved_at: Some(now + TimeDelta::hours(25)),
        ended_at: None,
        ended_by: None,
        reason: None,
    };
    let mut tx = db.begin_write().await.unwrap();
    assert!(
        tx.move_promotion(id, &approve, &audit(id))
            .await
            .unwrap()
            .is_some()
    );
    tx.commit().await.unwrap();
    let before = audit_log(db).await.len();
    let mut tx = db.begin_write().await.unwrap();
    assert_eq!(
        tx.move_promotion(id, &approve, &audit(id)).await.unwrap(),
        None,
        "already moved"
    );
    let seen = tx.promotion(id).await.unwrap().unwrap();
    assert_eq!(seen.state, "approved");
    tx.commit().await.unwrap();
    assert_eq!(
        audit_log(db).await.len(),
        before,
        "no audit row for a lost move"
    );

    // Promoted: it is closed, and the flag can be marked again.
    let promote = PromotionMove {
        from: "approved",
        to: "promoted",
        approved_by: None,
        approved_at: None,
        ended_at: Some(now + TimeDelta::hours(26)),
        ended_by: Some("carol"),
        reason: None,
    };
    let mut tx = db.begin_write().await.unwrap();
    assert!(
        tx.move_promotion(id, &promote, &audit(id))
            .await
            .unwrap()
            .is_some()
    );
    tx.commit().await.unwrap();
    let row = db.promotion(id).await.unwrap().unwrap();
    assert_eq!(row.state, "promoted");
    assert_eq!(
        row.approved_by.as_deref(),
        Some("bob"),
        "kept from the approval"
    );
    assert_eq!(row.approved_at, Some(now + TimeDelta::hours(25)));
    assert_eq!(row.ended_at, Some(now + TimeDelta::hours(26)));
    assert_eq!(row.ended_by.as_deref(), Some("carol"));
    let mut tx = db.begin_write().await.unwrap();
    let again = tx
        .insert_promotion(&new, audit)
        .await
        .unwrap()
        .map(|(id, _)| id);
    assert!(
        again.is_some(),
        "a closed promotion does not block a new one"
    );
    tx.commit().await.unwrap();

    // The database refuses a state the machine does not have.
    let bogus = PromotionMove {
        from: "pending",
        to: "shipped",
        approved_by: None,
        approved_at: None,
        ended_at: None,
        ended_by: None,
        reason: None,
    };
    let mut tx = db.begin_write().await.unwrap();
    assert!(
        tx.move_promotion(other_id, &bogus, &audit(other_id))
            .await
            .is_err()
    );
    drop(tx);

    let all = db.promotions(None, None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.id).collect::<Vec<_>>(),
        [again.unwrap(), other_id, id]
    );
    let pending = db.promotions(Some("pending"), None, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let of_flag = db.promotions(None, Some("dark_mode"), 10).await.unwrap();
    assert_eq!(
        of_flag.iter().map(|p| p.id).collect::<Vec<_>>(),
        [again.unwrap(), id]
    );
    let open = db.open_promotions().await.unwrap();
    assert_eq!(
        open.iter().map(|p| p.id).collect::<Vec<_>>(),
        [other_id, again.unwrap()]
    );
}
both!(one_open_promotion_per_flag_and_moves_from_the_state_read);
