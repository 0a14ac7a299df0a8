//! The permission table: docs/roles.md's matrix as it holds on every door. Every console route,
//! every API route and every state-changing CLI command, for each caller and (where a
//! flag is involved) each risk, with the outcome expected. `the_table_holds` walks it
//! against a real server on a loopback port and the real binary, over one SQLite
//! database, and for every refused cell checks that no flag, account, token or audit
//! row changed.
//!
//! A route the server serves (`vexil_server::route_table`) or a command the binary
//! lists (`vexil help`) without a row here fails the test.
//!
//! Callers, in column order:
//! - `anon`: no session, no token, no `--as`;
//! - `disabled`: an account disabled after it signed in / got its token;
//! - `revoked`: a revoked token (on the console, a Bearer header opens nothing; the
//!   CLI takes no tokens: `n/a`);
//! - `readonly`, `support`, `ops`, `superadmin`: signed in / its token / `--as`;
//! - `super+T`: a superadmin with TOTP: an elevated console session, `totp` in the
//!   API body, `--totp` on the command line;
//! - `client`: an application's client key for prod (a Bearer header);
//! - `client-`: a revoked client key.
//!
//! The files beside this one: `cells.rs` (what a cell must come to, the walk, the
//! check that a refused cell changed nothing), `callers.rs` (the world and who each
//! column is), `console_door.rs` (a caller on the console), `prepared.rs` (the state a
//! promotion or client-key row acts on).

mod callers;
mod cells;
mod console_door;
mod prepared;

use cells::{Cell, Expect, walk};

use Expect::*;

/// Risk of the flag a row acts on; `Any` where no flag is involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Risk {
    Any,
    Low,
    Medium,
    High,
}

/// One row: what is asked (`METHOD /path`, or `vexil command`), the flag's risk, and
/// the outcome for each caller in column order.
pub(crate) struct Row {
    pub(crate) what: &'static str,
    pub(crate) risk: Risk,
    pub(crate) outcomes: [Expect; 10],
}

const fn row(what: &'static str, risk: Risk, outcomes: [Expect; 10]) -> Row {
    Row {
        what,
        risk,
        outcomes,
    }
}

// Shorthands. Console: `Page` 200 and nothing written; `SignIn` 303 to the sign-in
// page and nothing written; `Denied` a 403 page and nothing written; `Elevate` 303 to
// the elevation page and nothing written (a flip asks for its code on its own page
// instead: `Page`); `Flips` the flag changed with its audit row;
// `Audits(status, actions)` exactly those audit rows and nothing else.
// API: `Ok` 200 and nothing written; `Err(status, code)` and nothing written.
// CLI: `Exit(code)` and nothing written; `Na` not a caller on that door.
// Any door: `Answers(status)`: that status and nothing written.
const FORBID: Expect = Err(403, "forbidden");
const ELEV: Expect = Err(403, "elevation_required");
const UNAUTH: Expect = Err(401, "unauthenticated");
const SIGNED_IN: Expect = Audits(303, &["console.auth.sign_in"]);
const SIGN_IN_FAILED: Expect = Audits(401, &["console.auth.sign_in_failed"]);
// A name that is no account: refused alike, but summed into one row a minute rather
// than a row per attempt (docs/roles.md#signing-in), so nothing is written at once.
const NO_SUCH_NAME: Expect = Audits(401, &[]);
const SIGNED_OUT: Expect = Audits(303, &["console.auth.sign_out"]);
const ELEVATED: Expect = Audits(303, &["console.auth.elevate"]);
const NO_TOTP: Expect = Refused(422);
const USAGE: Expect = Exit(2);
const REFUSED: Expect = Exit(1);
// Promotions: each step's audit rows (a promote writes the prod flip with its row; a
// code sent with a promote that needs it is audited too, from the API and the CLI
// alike).
const MARKED: &[&str] = &["console.flag.mark_promote"];
const APPROVED: &[&str] = &["console.flag.approved"];
const PROMOTED: &[&str] = &["console.flag.flip", "console.flag.promoted"];
const PROMOTED_T: &[&str] = &[
    "console.auth.elevate",
    "console.flag.flip",
    "console.flag.promoted",
];
const REJECTED: &[&str] = &["console.flag.rejected"];
const KEY_MADE: &[&str] = &["console.client_key.create"];
const KEY_REVOKED: &[&str] = &["console.client_key.revoke"];
// OFREP refuses in its own shape (no `error` code): a bare 401.
const NO_KEY: Expect = Answers(401);

#[rustfmt::skip]
pub(crate) const TABLE: &[Row] = &[
    //                                                           anon      disabled  revoked   readonly  support   ops       superadmin super+T  client    client-
    // The console (HTML, a session cookie).
    row("GET /console",                              Risk::Any,    [Redirect, Redirect, Redirect, Redirect, Redirect, Redirect, Redirect, Redirect, Redirect, Redirect]),
    row("GET /console/sign-in",                      Risk::Any,    [Page,     Page,     Page,     Page,     Page,     Page,     Page,     Page, Page,     Page]),
    row("POST /console/sign-in",                     Risk::Any,    [NO_SUCH_NAME, SIGN_IN_FAILED, SIGN_IN_FAILED, SIGNED_IN, SIGNED_IN, SIGNED_IN, SIGNED_IN, SIGNED_IN, SIGN_IN_FAILED, SIGN_IN_FAILED]),
    row("POST /console/sign-out",                    Risk::Any,    [SignIn,   SignIn,   SignIn,   SIGNED_OUT, SIGNED_OUT, SIGNED_OUT, SIGNED_OUT, SIGNED_OUT, SignIn,   SignIn]),
    row("GET /console/flags",                        Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    row("POST /console/flags/{flag_key}/flip",       Risk::Low,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Flips,    Flips,    Flips, SignIn,   SignIn]),
    row("POST /console/flags/{flag_key}/flip",       Risk::Medium, [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Flips,    Flips, SignIn,   SignIn]),
    // Without an elevation, the flip's own page asks for the code (200, nothing written).
    row("POST /console/flags/{flag_key}/flip",       Risk::High,   [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Page,     Flips, SignIn,   SignIn]),
    row("GET /console/flags/{flag_key}",             Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    // Every role may open it; it offers a code only to a role elevation helps.
    row("GET /console/elevate",                      Risk::Any,    [SignIn,   SignIn,   SignIn,   Page,     Page,     Page,     Page,     Page, SignIn,   SignIn]),
    row("POST /console/elevate",                     Risk::Any,    [SignIn,   SignIn,   SignIn,   NO_TOTP,  NO_TOTP,  NO_TOTP,  NO_TOTP,  ELEVATED, SignIn,   SignIn]),
    row("GET /console/account",                      Risk::Any,    [SignIn,   SignIn,   SignIn,   Page,     Page,     Page,     Page,     Page, SignIn,   SignIn]),
    row("POST /console/account/totp",                Risk::Any,    [SignIn,   SignIn,   SignIn,   Redirect, Redirect, Redirect, Redirect, Refused(422), SignIn,   SignIn]),
    row("POST /console/account/totp/confirm",        Risk::Any,    [SignIn,   SignIn,   SignIn,   Refused(400), Refused(400), Refused(400), Refused(400), Refused(400), SignIn,   SignIn]),
    row("GET /console/audit",                        Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    row("GET /console/promotions",                   Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    row("GET /console/deprecation",                  Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    row("GET /console/stale",                        Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    row("GET /console/reconcile",                    Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    // No process of the world runs off its rows, so a caller the role lets through
    // reaches the use case and is told there is nothing to reconcile (409, nothing
    // written), a superadmin before any elevation (the pair is judged before a TOTP
    // code is asked for); the reconciling flip itself is tested in reconcile.rs.
    row("POST /console/reconcile",                   Risk::Low,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Refused(409), Refused(409), Refused(409), SignIn,   SignIn]),
    row("POST /console/reconcile",                   Risk::Medium, [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Refused(409), Refused(409), SignIn,   SignIn]),
    row("POST /console/reconcile",                   Risk::High,   [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Refused(409), Refused(409), SignIn,   SignIn]),
    row("GET /console/instances",                    Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Page,     Page,     Page, SignIn,   SignIn]),
    row("POST /console/flags/{flag_key}/promotions", Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Moves(303, MARKED), Moves(303, MARKED), SignIn,   SignIn]),
    row("POST /console/promotions/{id}/approve",     Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Moves(303, APPROVED), Moves(303, APPROVED), SignIn,   SignIn]),
    row("POST /console/promotions/{id}/promote",     Risk::Low,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Moves(303, PROMOTED), Moves(303, PROMOTED), SignIn,   SignIn]),
    row("POST /console/promotions/{id}/promote",     Risk::Medium, [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Moves(303, PROMOTED), Moves(303, PROMOTED), SignIn,   SignIn]),
    row("POST /console/promotions/{id}/promote",     Risk::High,   [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Elevate,  Moves(303, PROMOTED), SignIn,   SignIn]),
    row("GET /console/client-keys",                  Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Page,     Page,     SignIn,   SignIn]),
    row("POST /console/client-keys",                 Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Audits(200, KEY_MADE), Audits(200, KEY_MADE), SignIn, SignIn]),
    row("POST /console/client-keys/{id}/revoke",     Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Audits(303, KEY_REVOKED), Audits(303, KEY_REVOKED), SignIn, SignIn]),
    row("POST /console/promotions/{id}/reject",      Risk::Any,    [SignIn,   SignIn,   SignIn,   Denied,   Denied,   Denied,   Moves(303, REJECTED), Moves(303, REJECTED), SignIn,   SignIn]),
    // The JSON API (a Bearer token).
    row("GET /api/v1/flags",                         Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   Ok,       Ok,       Ok, UNAUTH,   UNAUTH]),
    row("GET /api/v1/flags/{key}",                   Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   Ok,       Ok,       Ok, UNAUTH,   UNAUTH]),
    row("POST /api/v1/flags/{key}/flip",             Risk::Low,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   Flips,    Flips,    Flips, UNAUTH,   UNAUTH]),
    row("POST /api/v1/flags/{key}/flip",             Risk::Medium, [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Flips,    Flips, UNAUTH,   UNAUTH]),
    row("POST /api/v1/flags/{key}/flip",             Risk::High,   [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   ELEV,     Flips, UNAUTH,   UNAUTH]),
    row("GET /api/v1/audit",                         Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   Ok,       Ok,       Ok, UNAUTH,   UNAUTH]),
    row("GET /api/v1/me",                            Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   Ok,       Ok,       Ok,       Ok,       Ok, UNAUTH,   UNAUTH]),
    row("GET /api/v1/promotions",                    Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   Ok,       Ok,       Ok, UNAUTH,   UNAUTH]),
    row("GET /api/v1/promotions/{id}",               Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   Ok,       Ok,       Ok, UNAUTH,   UNAUTH]),
    row("POST /api/v1/flags/{key}/promotions",       Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Moves(201, MARKED), Moves(201, MARKED), UNAUTH,   UNAUTH]),
    row("POST /api/v1/promotions/{id}/approve",      Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Moves(200, APPROVED), Moves(200, APPROVED), UNAUTH,   UNAUTH]),
    row("POST /api/v1/promotions/{id}/promote",      Risk::Low,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Moves(200, PROMOTED), Moves(200, PROMOTED), UNAUTH,   UNAUTH]),
    row("POST /api/v1/promotions/{id}/promote",      Risk::Medium, [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Moves(200, PROMOTED), Moves(200, PROMOTED), UNAUTH,   UNAUTH]),
    row("POST /api/v1/promotions/{id}/promote",      Risk::High,   [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   ELEV,     Moves(200, PROMOTED_T), UNAUTH,   UNAUTH]),
    row("POST /api/v1/promotions/{id}/reject",       Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Moves(200, REJECTED), Moves(200, REJECTED), UNAUTH,   UNAUTH]),
    row("GET /api/v1/client-keys",                   Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Ok,       Ok,       UNAUTH,   UNAUTH]),
    row("POST /api/v1/client-keys",                  Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Audits(201, KEY_MADE), Audits(201, KEY_MADE), UNAUTH, UNAUTH]),
    row("POST /api/v1/client-keys/{id}/revoke",      Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   FORBID,   FORBID,   FORBID,   Audits(200, KEY_REVOKED), Audits(200, KEY_REVOKED), UNAUTH, UNAUTH]),
    // The evaluation plane (a client key): an account's token reads nothing here, as
    // a client key reads nothing above.
    row("GET /sdk/v1/snapshot",                      Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   Ok,       UNAUTH]),
    row("GET /sdk/v1/stream",                        Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   Ok,       UNAUTH]),
    row("POST /sdk/v1/report",                       Risk::Any,    [UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   UNAUTH,   Answers(204), UNAUTH]),
    row("POST /ofrep/v1/evaluate/flags/{key}",       Risk::Any,    [NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   Ok,       NO_KEY]),
    row("POST /ofrep/v1/evaluate/flags",             Risk::Any,    [NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   Ok,       NO_KEY]),
    row("GET /ofrep/v1/events",                      Risk::Any,    [NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   NO_KEY,   Ok,       NO_KEY]),
    // The break-glass CLI (database access, and `--as NAME` where an account acts).
    row("vexil flip",                                Risk::Low,    [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  Flips,    Flips,    Flips, Na,       Na]),
    row("vexil flip",                                Risk::Medium, [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Flips,    Flips, Na,       Na]),
    row("vexil flip",                                Risk::High,   [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  REFUSED,  Flips, Na,       Na]),
    // Importing is a superadmin's act whatever the risk; a high-risk flag's row needs
    // a code, as its flip would (docs/roles.md).
    row("vexil import",                              Risk::Low,    [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Flips,    Flips, Na,       Na]),
    row("vexil import",                              Risk::Medium, [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Flips,    Flips, Na,       Na]),
    row("vexil import",                              Risk::High,   [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  REFUSED,  Flips, Na,       Na]),
    row("vexil reconcile",                           Risk::Low,    [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  REFUSED,  REFUSED, Na,       Na]),
    row("vexil reconcile",                           Risk::Medium, [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  REFUSED,  REFUSED, Na,       Na]),
    row("vexil reconcile",                           Risk::High,   [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  REFUSED,  REFUSED, Na,       Na]),
    row("vexil promotion mark",                      Risk::Any,    [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Moves(0, MARKED), Moves(0, MARKED), Na,       Na]),
    row("vexil promotion approve",                   Risk::Any,    [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Moves(0, APPROVED), Moves(0, APPROVED), Na,       Na]),
    row("vexil promotion promote",                   Risk::Low,    [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Moves(0, PROMOTED), Moves(0, PROMOTED), Na,       Na]),
    row("vexil promotion promote",                   Risk::Medium, [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Moves(0, PROMOTED), Moves(0, PROMOTED), Na,       Na]),
    row("vexil promotion promote",                   Risk::High,   [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  REFUSED,  Moves(0, PROMOTED_T), Na,       Na]),
    row("vexil promotion reject",                    Risk::Any,    [USAGE,    REFUSED,  Na,       REFUSED,  REFUSED,  REFUSED,  Moves(0, REJECTED), Moves(0, REJECTED), Na,       Na]),
    // Account administration takes no `--as`: database access is the credential (the
    // bootstrap and break-glass path, docs/roles.md#accounts). Each is audited with `"via": "cli"`.
    row("vexil user add",                            Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na, Na,       Na]),
    row("vexil user set-role",                       Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na, Na,       Na]),
    row("vexil user totp",                           Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na, Na,       Na]),
    row("vexil user disable",                        Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na, Na,       Na]),
    row("vexil token create",                        Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na, Na,       Na]),
    row("vexil token revoke",                        Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na, Na,       Na]),
    row("vexil client-key create",                   Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na,       Na,       Na]),
    row("vexil client-key revoke",                   Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na,       Na,       Na]),
    row("vexil migrate",                             Risk::Any,    [DbAccess, Na,       Na,       Na,       Na,       Na,       Na,       Na, Na,       Na]),
];

/// Routes that need no account at all, and commands that change nothing: outside the
/// table by design, and listed so that a new one is a decision, not an accident.
pub(crate) const OPEN_ROUTES: &[&str] = &[
    "GET /",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /static/console.css",
    "GET /static/htmx.min.js",
    "GET /static/console.js",
    "GET /api/openapi.json",
    "GET /api/docs",
    "GET /api/docs/",
    "GET /api/docs/{*rest}",
    "OPTIONS /ofrep/v1/evaluate/flags/{key}",
    "OPTIONS /ofrep/v1/evaluate/flags",
    "OPTIONS /ofrep/v1/events",
];
pub(crate) const READ_ONLY_COMMANDS: &[&str] = &[
    "vexil check",
    "vexil user list",
    "vexil flags list",
    "vexil token list",
    "vexil client-key list",
    "vexil audit",
    "vexil audit show",
    "vexil serve",
    "vexil instances",
    "vexil deprecation",
    "vexil doctor",
    "vexil promotion list",
    "vexil promotion show",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_holds() {
    let cells: Vec<Cell> = TABLE
        .iter()
        .flat_map(|row| {
            row.outcomes
                .iter()
                .enumerate()
                .map(move |(caller, expect)| Cell {
                    what: row.what,
                    risk: row.risk,
                    caller,
                    expect: *expect,
                })
        })
        .collect();
    let walked = walk(&cells).await;
    // The size of the table, for the record.
    println!(
        "permission table: {} rows, {} cells, {walked} walked",
        TABLE.len(),
        cells.len()
    );
}
