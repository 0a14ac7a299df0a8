//! The role matrix (docs/roles.md), every role × action × risk × elevation written out.

use vexil_core::rbac::requirement;
use vexil_core::{Action, Clearance, Denied, Risk, Role, check_role};

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
            let actual = match check_role(role, action) {
                Ok(Clearance::Granted) => A,
                Ok(Clearance::NeedsElevation) if elevated => A,
                Ok(Clearance::NeedsElevation) => E,
                Err(Denied::Forbidden { .. }) => F,
                Err(Denied::ElevationRequired { .. }) => unreachable!("a role check"),
            };
            assert_eq!(actual, expected, "{role} {action:?} elevated={elevated}");
        }
    }
}

/// An action and, for readonly, support, ops and superadmin in turn, the outcome
/// without and with elevation.
type Row = (
    Action,
    [Outcome; 2],
    [Outcome; 2],
    [Outcome; 2],
    [Outcome; 2],
);

/// docs/roles.md's matrix, one row per action (flag actions once per risk).
#[rustfmt::skip]
const MATRIX: [Row; 16] = [
    //  action                          readonly  support  ops      superadmin
    //                                  [plain, elevated] in each column
    (Action::ViewFlags,                 [F, F],   [F, F],  [A, A],  [A, A]),
    (Action::ViewAudit,                 [F, F],   [F, F],  [A, A],  [A, A]),
    (Action::Flip(Risk::Low),           [F, F],   [F, F],  [A, A],  [A, A]),
    (Action::Flip(Risk::Medium),        [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::Flip(Risk::High),          [F, F],   [F, F],  [F, F],  [E, A]),
    (Action::MarkPromote,               [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::ApprovePromotion,          [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::Promote(Risk::Low),        [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::Promote(Risk::Medium),     [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::Promote(Risk::High),       [F, F],   [F, F],  [F, F],  [E, A]),
    (Action::RejectPromotion,           [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::ManageAccounts,            [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::ManageClientKeys,          [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::Import(Risk::Low),         [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::Import(Risk::Medium),      [F, F],   [F, F],  [F, F],  [A, A]),
    (Action::Import(Risk::High),        [F, F],   [F, F],  [F, F],  [E, A]),
];

#[test]
fn role_matrix() {
    for (action, readonly, support, ops, superadmin) in MATRIX {
        check(action, readonly, support, ops, superadmin);
    }
}

#[test]
fn the_matrix_covers_every_action() {
    let rows: Vec<Action> = MATRIX.iter().map(|row| row.0).collect();
    assert_eq!(
        rows,
        Action::ALL,
        "MATRIX and Action::ALL list the same actions"
    );
    // `Action::ALL` must hold every variant, flag actions once per risk. This match is
    // exhaustive: a new variant stops it compiling until it is added here, to
    // `Action::ALL` and to MATRIX.
    let per_variant = |action: &Action| match action {
        Action::ViewFlags => 0,
        Action::ViewAudit => 1,
        Action::Flip(_) => 2,
        Action::MarkPromote => 3,
        Action::ApprovePromotion => 4,
        Action::Promote(_) => 5,
        Action::RejectPromotion => 6,
        Action::ManageAccounts => 7,
        Action::ManageClientKeys => 8,
        Action::Import(_) => 9,
    };
    let mut counts = [0; 10];
    for action in &Action::ALL {
        counts[per_variant(action)] += 1;
    }
    assert_eq!(counts, [1, 1, 3, 1, 1, 3, 1, 1, 1, 3]);
    for action in Action::ALL {
        // Readonly and support open no flag page and change nothing.
        assert!(requirement(action).role >= Role::Ops, "{action:?}");
    }
}

#[test]
fn denials_say_what_was_wrong() {
    assert_eq!(
        check_role(Role::Ops, Action::Flip(Risk::Medium))
            .unwrap_err()
            .to_string(),
        "role ops may not flip a medium-risk flag: it needs superadmin"
    );
    assert_eq!(
        check_role(Role::Support, Action::ViewFlags)
            .unwrap_err()
            .to_string(),
        "role support may not view the flags: it needs ops"
    );
    assert_eq!(
        Denied::ElevationRequired {
            action: Action::Flip(Risk::High)
        }
        .to_string(),
        "to flip a high-risk flag, elevate with a fresh TOTP code first"
    );
}

#[test]
fn a_high_risk_flip_needs_elevation_of_a_role_that_suffices() {
    assert_eq!(
        check_role(Role::Superadmin, Action::Flip(Risk::High)),
        Ok(Clearance::NeedsElevation)
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
