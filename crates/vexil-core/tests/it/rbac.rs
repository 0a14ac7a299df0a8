//! The role matrix (SPEC §5), every role × action × risk × elevation written out.

use vexil_core::rbac::requirement;
use vexil_core::{Action, Denied, Risk, Role, authorize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Allowed.
    A,
    /// `Denied::Forbidden`: the role is too low.
    F,
    /// `Denied::ElevationRequired`: the role suffices, a TOTP elevation is missing.
    E,
}
use Outcome::{A, E, F};

/// One row of the matrix: for each role, the outcome without and with elevation.
#[track_caller]
fn check(
    action: Action,
    readonly: [Outcome; 2],
    support: [Outcome; 2],
    ops: [Outcome; 2],
    superadmin: [Outcome; 2],
) {
    for (role, expected) in [
        (Role::Readonly, readonly),
        (Role::Support, support),
        (Role::Ops, ops),
        (Role::Superadmin, superadmin),
    ] {
        for (elevated, expected) in [(false, expected[0]), (true, expected[1])] {
            let actual = match authorize(role, action, elevated) {
                Ok(()) => A,
                Err(Denied::Forbidden { .. }) => F,
                Err(Denied::ElevationRequired { .. }) => E,
            };
            assert_eq!(actual, expected, "{role} {action:?} elevated={elevated}");
        }
    }
}

#[test]
#[rustfmt::skip]
fn role_matrix() {
    //    action                            readonly  support  ops      superadmin
    //                                      [plain, elevated] in each column
    check(Action::ViewFlags,                [F, F],   [F, F],  [A, A],  [A, A]);
    check(Action::ViewAudit,                [F, F],   [F, F],  [A, A],  [A, A]);
    check(Action::Flip(Risk::Low),          [F, F],   [F, F],  [A, A],  [A, A]);
    check(Action::Flip(Risk::Medium),       [F, F],   [F, F],  [F, F],  [A, A]);
    check(Action::Flip(Risk::High),         [F, F],   [F, F],  [F, F],  [E, A]);
    check(Action::MarkPromote,              [F, F],   [F, F],  [F, F],  [A, A]);
    check(Action::ApprovePromotion,         [F, F],   [F, F],  [F, F],  [A, A]);
    check(Action::Promote(Risk::Low),       [F, F],   [F, F],  [F, F],  [A, A]);
    check(Action::Promote(Risk::Medium),    [F, F],   [F, F],  [F, F],  [A, A]);
    check(Action::Promote(Risk::High),      [F, F],   [F, F],  [F, F],  [E, A]);
    check(Action::RejectPromotion,          [F, F],   [F, F],  [F, F],  [A, A]);
}

#[test]
fn the_table_above_covers_every_action() {
    // `Action::ALL` is what the matrix walks elsewhere (routes, CLI); it must list
    // exactly the eleven actions of `role_matrix`.
    assert_eq!(Action::ALL.len(), 11);
    for action in Action::ALL {
        // Every action needs at least ops: readonly and support open no flag page.
        assert!(requirement(action).role >= Role::Ops, "{action:?}");
    }
}

#[test]
fn denials_say_what_was_wrong() {
    assert_eq!(
        authorize(Role::Ops, Action::Flip(Risk::Medium), true)
            .unwrap_err()
            .to_string(),
        "role ops may not flip a medium-risk flag: it needs superadmin"
    );
    assert_eq!(
        authorize(Role::Support, Action::ViewFlags, false)
            .unwrap_err()
            .to_string(),
        "role support may not view the flags: it needs ops"
    );
    assert_eq!(
        authorize(Role::Superadmin, Action::Flip(Risk::High), false)
            .unwrap_err()
            .to_string(),
        "to flip a high-risk flag, elevate with a fresh TOTP code first"
    );
}

#[test]
fn roles_parse_exactly_and_order_by_privilege() {
    assert_eq!(Role::parse("ops"), Ok(Role::Ops));
    assert_eq!(Role::parse("superadmin"), Ok(Role::Superadmin));
    assert_eq!(
        Role::parse("admin").unwrap_err().to_string(),
        "unknown role 'admin' (expected one of: readonly, support, ops, superadmin)"
    );
    assert!(Role::parse("Ops").is_err());
    assert!(
        Role::Readonly < Role::Support && Role::Support < Role::Ops && Role::Ops < Role::Superadmin
    );
}
