//! The permission table's cells: what each must come to (`Expect`), walking them
//! (`walk`), the check that every route and command has a row, and the check that a
//! refused cell changed nothing (`Snapshot`).

use std::collections::BTreeSet;

use vexil_server::{Surface, route_table};
use vexil_testkit::audit_log;

use super::callers::World;
use super::{OPEN_ROUTES, READ_ONLY_COMMANDS, Risk, TABLE};
use crate::site::Site;

/// What a cell must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Page,
    Redirect,
    SignIn,
    Denied,
    Elevate,
    Refused(u16),
    Flips,
    Audits(u16, &'static [&'static str]),
    Ok,
    Err(u16, &'static str),
    Exit(i32),
    /// A promotion moved: this status (a CLI's exit code), exactly these new audit
    /// rows, and no account or token changed.
    Moves(u16, &'static [&'static str]),
    DbAccess,
    /// This status and nothing written (a door whose refusals have no `error` code,
    /// or an answer with no body).
    Answers(u16),
    Na,
}

/// One cell: a row's request, by one caller (its column), and what must happen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) what: &'static str,
    pub(crate) risk: Risk,
    pub(crate) caller: usize,
    pub(crate) expect: Expect,
}

/// The columns, as test messages name them.
const CALLERS: [&str; 10] = [
    "anon",
    "disabled",
    "revoked",
    "readonly",
    "support",
    "ops",
    "superadmin",
    "super+T",
    "client",
    "client-",
];

/// Everything a refused cell must leave as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    flags: Vec<(String, String, bool, Option<String>)>,
    users: Vec<(String, String, bool)>,
    tokens: Vec<(i64, bool)>,
    client_keys: Vec<(i64, bool)>,
    audit: Vec<(i64, String)>,
    promotions: Vec<(i64, String)>,
}

impl Snapshot {
    /// `self` (taken after a command) without what the server's housekeeping wrote
    /// meanwhile, on its own minute: promotions it expired (the test clock moves
    /// soaks along) and the minute's summary of unknown-name sign-ins. A refused
    /// command writes neither.
    fn without_housekeeping(&self, before: &Snapshot) -> Snapshot {
        let new_audit = |id: i64| before.audit.iter().all(|(old, _)| *old != id);
        let expired: Vec<i64> = self
            .promotions
            .iter()
            .filter(|(id, state)| {
                state == "expired"
                    && before
                        .promotions
                        .iter()
                        .any(|(o, s)| o == id && s != "expired")
            })
            .map(|(id, _)| *id)
            .collect();
        Snapshot {
            audit: self
                .audit
                .iter()
                .filter(|(id, action)| {
                    !(new_audit(*id)
                        && (action == "console.flag.expired"
                            || action == "console.auth.sign_in_failed_unknown"))
                })
                .cloned()
                .collect(),
            promotions: self
                .promotions
                .iter()
                .map(
                    |(id, state)| match before.promotions.iter().find(|(o, _)| o == id) {
                        Some(old) if expired.contains(id) => old.clone(),
                        _ => (*id, state.clone()),
                    },
                )
                .collect(),
            ..self.clone()
        }
    }
}

/// Walks every cell; returns how many were walked (all but `Na`).
pub(crate) async fn walk(cells: &[Cell]) -> usize {
    check_coverage();
    let world = World::new().await;
    let mut walked = 0;
    for cell in cells {
        if cell.expect == Expect::Na {
            continue;
        }
        walked += 1;
        world.run(cell).await;
    }
    walked
}

/// Every route and every command has a row, or is listed as open / read-only.
fn check_coverage() {
    let rows: BTreeSet<&str> = TABLE.iter().map(|row| row.what).collect();
    for route in route_table() {
        let name = format!("{} {}", route.method, route.path);
        let listed = rows.contains(name.as_str()) || OPEN_ROUTES.contains(&name.as_str());
        assert!(
            listed,
            "{name} ({:?}) has no row in the permission table",
            route.surface
        );
        let open = matches!(
            route.surface,
            Surface::Probe | Surface::Docs | Surface::Static | Surface::Preflight
        );
        assert_eq!(
            open,
            OPEN_ROUTES.contains(&name.as_str()),
            "{name}: open or not"
        );
    }
    let site = Site::new("sqlite://unused.db".into());
    for command in commands(&site, &[]) {
        assert!(
            rows.contains(command.as_str()) || READ_ONLY_COMMANDS.contains(&command.as_str()),
            "`{command}` has no row in the permission table and is not listed as read-only"
        );
    }
}

/// The commands `vexil help` lists, with their subcommands.
fn commands(site: &Site, parent: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = parent.to_vec();
    args.push("--help");
    let help = site.run(&args);
    let mut found = Vec::new();
    let listing = help.stdout.split("Commands:").nth(1).unwrap_or_default();
    for line in listing.lines().take_while(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.is_empty() || name == "help" {
            continue;
        }
        let mut path = parent.to_vec();
        path.push(name);
        found.push(format!("vexil {}", path.join(" ")));
        found.extend(commands(site, &path));
    }
    found
}

impl World {
    pub(crate) async fn snapshot(&self) -> Snapshot {
        let db = self.app.db();
        let mut flags: Vec<_> = db
            .flag_rows()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.flag_key, r.env, r.value, r.updated_by))
            .collect();
        flags.sort();
        let users = db
            .users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.name, u.role, u.disabled))
            .collect();
        let tokens = db
            .tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.revoked_at.is_some()))
            .collect();
        let client_keys = db
            .client_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.id, k.revoked_at.is_some()))
            .collect();
        let audit = audit_log(db)
            .await
            .into_iter()
            .map(|r| (r.id, r.action))
            .collect();
        let promotions = db
            .promotions(None, None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p.state))
            .collect();
        Snapshot {
            flags,
            users,
            tokens,
            client_keys,
            audit,
            promotions,
        }
    }

    async fn run(&self, cell: &Cell) {
        let label = format!(
            "{} [{:?}] as {}",
            cell.what, cell.risk, CALLERS[cell.caller]
        );
        let flag = World::flag(cell.risk);
        let id = self.prepare(cell, flag).await;
        if let Some(command) = cell.what.strip_prefix("vexil ") {
            let before = self.snapshot().await;
            let run = self.cli(command, cell, flag, id).await;
            let after = self.snapshot().await;
            match cell.expect {
                Expect::Moves(code, actions) => {
                    assert_eq!(run.code, Some(i32::from(code)), "{label}: {run:?}");
                    assert_moved(&label, &before, &after, actions);
                }
                Expect::Exit(code) => {
                    assert_eq!(run.code, Some(code), "{label}: {run:?}");
                    assert_eq!(
                        before,
                        after.without_housekeeping(&before),
                        "{label}: refused, yet something changed"
                    );
                }
                Expect::Flips => {
                    assert_eq!(run.code, Some(0), "{label}: {run:?}");
                    assert_flipped(&label, &before, &after, flag);
                }
                Expect::DbAccess => {
                    assert_eq!(run.code, Some(0), "{label}: {run:?}");
                    // Each change is audited; `migrate` (already done) writes nothing.
                    let audited: &[&str] = match command {
                        "user add" => &["console.user.add"],
                        "user set-role" => &["console.user.set_role"],
                        "user totp" => &["console.user.totp_enrol"],
                        "user disable" => &["console.user.disable"],
                        "token create" => &["console.user.token_create"],
                        "token revoke" => &["console.user.token_revoke"],
                        "client-key create" => &["console.client_key.create"],
                        "client-key revoke" => &["console.client_key.revoke"],
                        _ => &[],
                    };
                    assert_eq!(new_actions(&before, &after), audited, "{label}");
                }
                other => panic!("{label}: {other:?} is not a CLI outcome"),
            }
            return;
        }
        let (method, path) = cell.what.split_once(' ').unwrap();
        if ["/api/", "/sdk/", "/ofrep/"]
            .iter()
            .any(|door| path.starts_with(door))
        {
            let client = self.api_client(cell.caller);
            let before = self.snapshot().await;
            let (status, body) = self.api(&client, method, path, cell, flag, id).await;
            let after = self.snapshot().await;
            match cell.expect {
                Expect::Moves(want, actions) => {
                    assert_eq!(status, want, "{label}: {body}");
                    assert_moved(&label, &before, &after, actions);
                }
                Expect::Ok => {
                    assert_eq!(status, 200, "{label}: {body}");
                    assert_eq!(before, after, "{label}: a read changed something");
                }
                Expect::Err(want, code) => {
                    assert_eq!(
                        (status, body["error"].as_str()),
                        (want, Some(code)),
                        "{label}: {body}"
                    );
                    assert_eq!(before, after, "{label}: refused, yet something changed");
                }
                Expect::Flips => {
                    assert_eq!(status, 200, "{label}: {body}");
                    assert_flipped(&label, &before, &after, flag);
                }
                Expect::Answers(want) => {
                    assert_eq!(status, want, "{label}: {body}");
                    assert_eq!(before, after, "{label}: something changed");
                }
                Expect::Audits(want, actions) => {
                    assert_eq!(status, want, "{label}: {body}");
                    assert_audited(&label, &before, &after, actions);
                }
                other => panic!("{label}: {other:?} is not an API outcome"),
            }
            return;
        }
        let (client, name, password) = self.console_client(cell.caller).await;
        let before = self.snapshot().await;
        let (status, location) = self
            .console((&client, &name, &password), method, path, cell, flag, id)
            .await;
        let after = self.snapshot().await;
        let unchanged =
            |what: &str| assert_eq!(before, after, "{label}: {what}, yet something changed");
        let said = format!("{label}: answered {status} {location}");
        match cell.expect {
            Expect::Page => {
                assert_eq!(status, 200, "{said}");
                unchanged("a page");
            }
            Expect::Redirect => {
                assert_eq!(status, 303, "{said}");
                assert!(!location.starts_with("/console/sign-in"), "{said}");
                unchanged("a redirect");
            }
            Expect::SignIn => {
                assert_eq!(status, 303, "{said}");
                assert!(location.starts_with("/console/sign-in"), "{said}");
                unchanged("sent to sign in");
            }
            Expect::Denied => {
                assert_eq!(status, 403, "{said}");
                unchanged("denied");
            }
            Expect::Elevate => {
                assert_eq!(status, 303, "{said}");
                assert!(location.starts_with("/console/elevate"), "{said}");
                unchanged("sent to elevate");
            }
            Expect::Refused(want) => {
                assert_eq!(status, want, "{said}");
                unchanged("refused");
            }
            Expect::Flips => {
                assert_eq!(status, 303, "{said}");
                assert!(location.starts_with("/console/flags"), "{said}");
                assert_flipped(&label, &before, &after, flag);
            }
            Expect::Moves(want, actions) => {
                assert_eq!(status, want, "{said}");
                assert!(location.starts_with("/console/promotions"), "{said}");
                assert_moved(&label, &before, &after, actions);
            }
            Expect::Audits(want, actions) => {
                assert_eq!(status, want, "{said}");
                assert_audited(&label, &before, &after, actions);
            }
            other => panic!("{label}: {other:?} is not a console outcome"),
        }
    }

    // ---- the CLI ----
}

/// Exactly `actions` were written to the audit log, and no flag, account or token
/// changed (a client key may: it is what these rows are about).
#[track_caller]
fn assert_audited(label: &str, before: &Snapshot, after: &Snapshot, actions: &[&str]) {
    assert_eq!(
        (&before.flags, &before.users, &before.tokens),
        (&after.flags, &after.users, &after.tokens),
        "{label}"
    );
    assert_eq!(new_actions(before, after), actions, "{label}");
    let keys_moved = actions.iter().any(|a| a.starts_with("console.client_key."));
    assert_eq!(
        before.client_keys != after.client_keys,
        keys_moved,
        "{label}"
    );
}

/// The flag changed in prod and the audit log gained its flip row (and, for an
/// elevated API flip, the elevation's), nothing else.
#[track_caller]
fn assert_flipped(label: &str, before: &Snapshot, after: &Snapshot, flag: &str) {
    let value = |s: &Snapshot| {
        s.flags
            .iter()
            .find(|f| f.0 == flag && f.1 == "prod")
            .map(|f| f.2)
    };
    assert_ne!(
        value(before),
        value(after),
        "{label}: the flag did not change"
    );
    assert!(value(after).is_some(), "{label}: no row");
    let actions = new_actions(before, after);
    assert!(
        actions.contains(&"console.flag.flip"),
        "{label}: {actions:?}"
    );
    assert!(
        actions
            .iter()
            .all(|a| ["console.flag.flip", "console.auth.elevate"].contains(a)),
        "{label}: {actions:?}"
    );
    assert_eq!(
        (&before.users, &before.tokens),
        (&after.users, &after.tokens),
        "{label}"
    );
}

/// A promotion was opened or moved, with exactly `actions` as new audit rows (a
/// promote's flip among them), and no account or token changed.
#[track_caller]
fn assert_moved(label: &str, before: &Snapshot, after: &Snapshot, actions: &[&str]) {
    assert_ne!(
        before.promotions, after.promotions,
        "{label}: no promotion moved"
    );
    assert_eq!(new_actions(before, after), actions, "{label}");
    assert_eq!(
        (&before.users, &before.tokens),
        (&after.users, &after.tokens),
        "{label}"
    );
    if !actions.contains(&"console.flag.flip") {
        assert_eq!(before.flags, after.flags, "{label}: a flag changed");
    }
}

fn new_actions<'a>(before: &Snapshot, after: &'a Snapshot) -> Vec<&'a str> {
    let known: BTreeSet<i64> = before.audit.iter().map(|(id, _)| *id).collect();
    let mut actions: Vec<(i64, &str)> = after
        .audit
        .iter()
        .filter(|(id, _)| !known.contains(id))
        .map(|(id, action)| (*id, action.as_str()))
        .collect();
    actions.sort();
    actions.into_iter().map(|(_, a)| a).collect()
}
