//! The one place in the binary that reads the process environment by hand.
//!
//! clap reads the settings it declares (`VEXIL_FLAGS`, …) itself. What remains is the
//! `FLAG_*` variables, captured once into an `EnvSnapshot` (ARCHITECTURE.md,
//! invariant 4).

use vexil_core::EnvSnapshot;

/// The `FLAG_*` variables of this process. Names or values that are not UTF-8 are
/// read lossily rather than aborting (`std::env::vars` would panic on them): a
/// mangled value is then reported as invalid, which is the truth.
pub(crate) fn flag_env() -> EnvSnapshot {
    EnvSnapshot::capture(std::env::vars_os().map(|(name, value)| {
        (
            name.to_string_lossy().into_owned(),
            value.to_string_lossy().into_owned(),
        )
    }))
}
