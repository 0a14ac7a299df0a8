//! The promotion state machine: each rule with its message, and properties over
//! random sequences of events and clock moves (promoted ⇒ approved earlier ⇒ after
//! the soak; terminal states absorb; one transition per accepted event).

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use vexil_core::audit::{FLAG_APPROVED, FLAG_EXPIRED, FLAG_PROMOTED, FLAG_REJECTED};
use vexil_core::promotion::{
    Changes, Event, ExpiryReason, MarkError, Promotion, PromotionState, TransitionError, Windows,
    apply, confirmation_phrase, due_expiry, mark,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

const NONE: Changes = Changes {
    staging_changed: false,
    prod_changed: false,
};

fn marked(soak_hours: u32) -> Promotion {
    mark("alice", t0(), soak_hours, true, false, None).unwrap()
}

#[test]
fn marking_needs_on_in_staging_off_in_prod_and_none_open() {
    let p = marked(24);
    assert_eq!(p.state, PromotionState::Pending);
    assert_eq!(p.soak_ends_at, t0() + TimeDelta::hours(24));
    assert_eq!(
        mark("a", t0(), 24, false, false, None),
        Err(MarkError::OffInStaging)
    );
    assert_eq!(
        mark("a", t0(), 24, true, true, None),
        Err(MarkError::OnInProd)
    );
    for open in [PromotionState::Pending, PromotionState::Approved] {
        let error = mark("a", t0(), 24, true, false, Some(open)).unwrap_err();
        assert_eq!(error, MarkError::AlreadyOpen { state: open });
    }
    // A finished promotion does not block a new one.
    for done in [
        PromotionState::Promoted,
        PromotionState::Rejected,
        PromotionState::Expired,
    ] {
        assert!(mark("a", t0(), 24, true, false, Some(done)).is_ok());
    }
    // Soak 0: approvable at once.
    assert_eq!(marked(0).soak_ends_at, t0());
}

#[test]
fn the_happy_path_and_its_audit_actions() {
    let w = Windows::default();
    let p = marked(24);
    let soon = t0() + TimeDelta::hours(23);
    let refused = apply(&p, &Event::Approve { by: "bob" }, soon, &w, NONE).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the soak ends at 2026-11-26 09:00:00 UTC: approve after that"
    );
    let later = t0() + TimeDelta::hours(24);
    let (p, t) = apply(&p, &Event::Approve { by: "bob" }, later, &w, NONE).unwrap();
    assert_eq!(
        (t.from, t.to, t.action),
        (
            PromotionState::Pending,
            PromotionState::Approved,
            FLAG_APPROVED
        )
    );
    assert_eq!(
        (p.approved_by.as_deref(), p.approved_at),
        (Some("bob"), Some(later))
    );
    let (p, t) = apply(&p, &Event::Promote { by: "carol" }, later, &w, NONE).unwrap();
    assert_eq!((t.to, t.action), (PromotionState::Promoted, FLAG_PROMOTED));
    assert_eq!(p.ended_at, Some(later));
    for event in [
        Event::Approve { by: "bob" },
        Event::Promote { by: "bob" },
        Event::Reject {
            by: "bob",
            reason: "no",
        },
        Event::Expire(ExpiryReason::ProdChanged),
    ] {
        assert_eq!(
            apply(&p, &event, later, &w, NONE),
            Err(TransitionError::Ended {
                state: PromotionState::Promoted
            })
        );
    }
}

#[test]
fn promote_needs_approval_and_reject_needs_a_reason() {
    let w = Windows::default();
    let p = marked(0);
    assert_eq!(
        apply(&p, &Event::Promote { by: "bob" }, t0(), &w, NONE),
        Err(TransitionError::NotApproved {
            state: PromotionState::Pending
        })
    );
    assert_eq!(
        apply(
            &p,
            &Event::Reject {
                by: "bob",
                reason: "  "
            },
            t0(),
            &w,
            NONE
        ),
        Err(TransitionError::ReasonRequired)
    );
    let (rejected, t) = apply(
        &p,
        &Event::Reject {
            by: "bob",
            reason: " not yet ",
        },
        t0(),
        &w,
        NONE,
    )
    .unwrap();
    assert_eq!((t.to, t.action), (PromotionState::Rejected, FLAG_REJECTED));
    assert_eq!(rejected.reason.as_deref(), Some("not yet"));
    // An approved promotion can be rejected too, and cannot be approved twice.
    let (approved, _) = apply(&p, &Event::Approve { by: "bob" }, t0(), &w, NONE).unwrap();
    assert_eq!(
        apply(&approved, &Event::Approve { by: "bob" }, t0(), &w, NONE),
        Err(TransitionError::NotPending {
            state: PromotionState::Approved
        })
    );
    assert!(
        apply(
            &approved,
            &Event::Reject {
                by: "bob",
                reason: "risky"
            },
            t0(),
            &w,
            NONE
        )
        .is_ok()
    );
}

#[test]
fn four_eyes_when_asked() {
    let p = marked(0);
    let w = Windows {
        distinct_approver: true,
        ..Windows::default()
    };
    assert_eq!(
        apply(&p, &Event::Approve { by: "alice" }, t0(), &w, NONE),
        Err(TransitionError::SameApprover {
            name: "alice".into()
        })
    );
    assert!(apply(&p, &Event::Approve { by: "bob" }, t0(), &w, NONE).is_ok());
    assert!(
        apply(
            &p,
            &Event::Approve { by: "alice" },
            t0(),
            &Windows::default(),
            NONE
        )
        .is_ok()
    );
}

#[test]
fn expiry_reasons_and_windows() {
    let w = Windows::default();
    let p = marked(24);
    let staging = Changes {
        staging_changed: true,
        prod_changed: false,
    };
    let prod = Changes {
        staging_changed: false,
        prod_changed: true,
    };
    assert_eq!(
        due_expiry(&p, t0(), &w, staging),
        Some(ExpiryReason::StagingChanged)
    );
    assert_eq!(
        due_expiry(&p, t0(), &w, prod),
        Some(ExpiryReason::ProdChanged)
    );
    // Pending: 7 days after the soak's end.
    let edge = p.soak_ends_at + TimeDelta::days(7);
    assert_eq!(due_expiry(&p, edge - TimeDelta::seconds(1), &w, NONE), None);
    assert_eq!(
        due_expiry(&p, edge, &w, NONE),
        Some(ExpiryReason::PendingTooLong)
    );
    // Approved: 72 h after the approval.
    let at = p.soak_ends_at;
    let (approved, _) = apply(&p, &Event::Approve { by: "bob" }, at, &w, NONE).unwrap();
    assert_eq!(
        due_expiry(&approved, at + TimeDelta::hours(71), &w, NONE),
        None
    );
    let late = at + TimeDelta::hours(72);
    assert_eq!(
        due_expiry(&approved, late, &w, NONE),
        Some(ExpiryReason::ApprovalUnused)
    );
    // An event on a promotion whose expiry is due is refused; the expiry is taken.
    assert_eq!(
        apply(&approved, &Event::Promote { by: "bob" }, late, &w, NONE),
        Err(TransitionError::ExpiryDue {
            reason: ExpiryReason::ApprovalUnused
        })
    );
    let (expired, t) = apply(
        &approved,
        &Event::Expire(ExpiryReason::ApprovalUnused),
        late,
        &w,
        NONE,
    )
    .unwrap();
    assert_eq!((t.to, t.action), (PromotionState::Expired, FLAG_EXPIRED));
    assert_eq!(expired.reason.as_deref(), Some("approval_unused"));
    assert_eq!(due_expiry(&expired, late, &w, staging), None, "terminal");
    assert_eq!(
        ExpiryReason::StagingChanged.to_string(),
        "the staging value changed while it was open"
    );
}

#[test]
fn the_confirmation_phrase_names_the_flag() {
    assert_eq!(
        confirmation_phrase("console_billing"),
        "promote console_billing to prod"
    );
}

/// One step of a random history: an event, or the clock moving.
#[derive(Debug, Clone)]
enum Step {
    Approve(bool),
    Promote,
    Reject(bool),
    Expire(u8),
    Wait(i64),
    Change(bool, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(Step::Approve),
        Just(Step::Promote),
        any::<bool>().prop_map(Step::Reject),
        (0u8..4).prop_map(Step::Expire),
        (0i64..400).prop_map(Step::Wait),
        (any::<bool>(), any::<bool>()).prop_map(|(s, p)| Step::Change(s, p)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn histories_keep_the_invariants(
        soak in 0u32..72,
        four_eyes in any::<bool>(),
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let windows = Windows { distinct_approver: four_eyes, ..Windows::default() };
        let mut now = t0();
        let mut p = mark("alice", now, soak, true, false, None).unwrap();
        let mut changes = Changes::default();
        let mut transitions = 0;
        let mut state_changes = 0;
        let reasons = [
            ExpiryReason::StagingChanged,
            ExpiryReason::ProdChanged,
            ExpiryReason::PendingTooLong,
            ExpiryReason::ApprovalUnused,
        ];
        for step in steps {
            let event = match step {
                Step::Wait(hours) => { now += TimeDelta::hours(hours); continue; }
                Step::Change(s, pr) => { changes = Changes { staging_changed: s, prod_changed: pr }; continue; }
                Step::Approve(marker) => Event::Approve { by: if marker { "alice" } else { "bob" } },
                Step::Promote => Event::Promote { by: "carol" },
                Step::Reject(with_reason) => Event::Reject { by: "bob", reason: if with_reason { "no" } else { "" } },
                Step::Expire(i) => Event::Expire(reasons[usize::from(i)]),
            };
            let before = p.clone();
            match apply(&p, &event, now, &windows, changes) {
                Ok((next, t)) => {
                    transitions += 1;
                    prop_assert_eq!(t.from, before.state);
                    prop_assert_eq!(t.to, next.state);
                    prop_assert_ne!(t.from, t.to, "every accepted event moves the state");
                    prop_assert!(before.state.is_open(), "a terminal state accepted {:?}", event);
                    if before.state != next.state { state_changes += 1; }
                    p = next;
                }
                Err(_) => prop_assert_eq!(&p, &before, "a refused event changed the promotion"),
            }
            // promoted ⇒ approved earlier ⇒ after the soak ended.
            if p.state == PromotionState::Promoted {
                let approved_at = p.approved_at.expect("approved before promoted");
                prop_assert!(approved_at >= p.soak_ends_at);
                prop_assert!(p.ended_at.unwrap() >= approved_at);
                prop_assert!(due_expiry(&p, now, &windows, changes).is_none());
            }
            if p.state == PromotionState::Approved {
                prop_assert!(p.approved_at.unwrap() >= p.soak_ends_at);
                if four_eyes { prop_assert_ne!(p.approved_by.as_deref(), Some("alice")); }
            }
            if matches!(p.state, PromotionState::Rejected | PromotionState::Expired) {
                prop_assert!(p.reason.as_deref().is_some_and(|r| !r.is_empty()));
            }
        }
        // One audit row per transition: every accepted event is exactly one change.
        prop_assert_eq!(transitions, state_changes);
        prop_assert!(transitions <= 2, "at most mark→approve→promote or one ending");
    }
}
