//! The runbook's rules as values and pure functions.
//!
//! Everything an operator decision depends on lives here, with no I/O, no async,
//! no clock and no process environment: storage, the console, the API, the CLI and
//! the `vexil` library all call into this crate and never the reverse.
//!
//! # Layout
//!
//! - [`key`]: `FlagKey` and `Env`, the two names every row and request carries.
//! - [`risk`]: `Risk`, the `low | medium | high` tag of a declaration.
//! - [`decl`]: the flags file (YAML) turned into a `FlagSet`, or every error in it,
//!   each located by file, line and column.
//! - [`env_var`]: the `FLAG_*` process variables, parsed with the runbook's on/off
//!   spellings and captured once into an `EnvSnapshot`.
//! - [`resolve`]: db > env > yaml, the source of a value and the dormant/invalid
//!   markers.
//! - [`reported`]: an env's layer as its live processes report it, and drift
//!   where they disagree.
//! - [`rbac`]: `Role` and the role matrix (docs/roles.md), as one table behind
//!   `check_role`.
//! - [`audit`]: the audit log's fixed action names and payloads (docs/schema.md).
//! - [`audit_chain`]: the audit log's hash chain: the canonical encoding of a row,
//!   links, anchors, and `Verifier`, which names the first row where it breaks.
//! - [`promotion`]: staging → prod promotion as a state machine (docs/promotion.md): `mark`,
//!   `apply`, `due_expiry`, the typed confirmation phrase.
//! - [`deprecation`]: the runbook's deprecation table: whether a flag's `FLAG_*`
//!   variable is in use, dormant, safe to remove or removed, from the evidence.
//! - [`reconcile`]: where live processes run something other than the DB row, and
//!   the value a reconciling flip would write.
//! - [`heroku`]: the runbook's silenced `heroku config:set`/`config:unset` lines,
//!   with the application names checked before they reach a shell line.
//! - [`import`]: an app's `FLAG_*` config read (`heroku config --json` or dotenv,
//!   each variable with its line) and judged into the rows an import writes or keeps.
//! - [`stale`]: flags on everywhere and unchanged for a while, or never flipped.
//! - [`doctor`]: the runbook's GA checklist and vexil's own health, each item
//!   passing or failing with its evidence.
//! - [`sdk`]: the evaluation plane's messages (`/sdk/v1`): the snapshot and change
//!   events a server sends the processes that follow it, their reports, and
//!   `AppName`.
//! - [`client_network`]: the network a client address counts as (an IPv6 /64),
//!   for limits and locks keyed by where attempts come from.
//! - [`clock`]: the `Clock` trait; the test clock (in `vexil-testkit`) and
//!   the binary's system clock implement it outside this crate.
//! - [`message`]: how outside text appears in one-line messages.
//! - [`old_admin`]: the admins of a console vexil adopted, and how an audit row
//!   written under one of their ids names its writer.
//! - [`text`]: the characters refused in free text from outside (a reason, a filter,
//!   a sign-in name): NUL, control characters, bidi controls.
//!
//! # Example
//!
//! ```
//! use vexil_core::{EnvSnapshot, FlagSet, Source, resolve};
//!
//! let flags = FlagSet::parse(
//!     "feature_flags.yaml",
//!     b"my_new_feature:\n  default: false\n  description: what it gates\n  risk: low\n",
//! )?;
//! let env = EnvSnapshot::capture([("FLAG_MY_NEW_FEATURE", "on"), ("PATH", "/bin")]);
//! let decl = flags.get("my_new_feature").expect("declared above");
//!
//! // No DB row and the master switch unset: the variable wins over the YAML default.
//! let resolved = resolve(decl, None, &env, env.master_switch());
//! assert!(resolved.value);
//! assert_eq!(resolved.source, Source::Env);
//! # Ok::<(), vexil_core::DeclErrors>(())
//! ```

pub mod audit;
pub mod audit_chain;
pub mod client_network;
pub mod clock;
pub mod decl;
pub mod deprecation;
pub mod doctor;
pub mod env_var;
pub mod heroku;
pub mod import;
pub mod key;
pub mod message;
pub mod old_admin;
pub mod promotion;
pub mod rbac;
pub mod reconcile;
pub mod reported;
pub mod resolve;
pub mod risk;
pub mod sdk;
pub mod stale;
pub mod text;

pub use clock::{Clock, InstantError, parse_instant};
pub use decl::{DeclError, DeclErrorKind, DeclErrors, FlagDecl, FlagSet};
pub use env_var::{EnvSnapshot, EnvVar, MasterSwitch};
pub use key::{Env, EnvError, Envs, FlagKey, FlagKeyError};
pub use rbac::{Action, Clearance, Denied, Role, RoleError, check_role};
pub use reported::{Drift, VarState, reported_layer};
pub use resolve::{Resolution, Resolved, Source, Undeclared, resolve, resolve_key};
pub use risk::{Risk, RiskError};
pub use sdk::{AppName, AppNameError};
pub use text::TextError;
