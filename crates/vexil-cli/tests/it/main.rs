//! The `vexil` binary, run for real in a scratch directory (one test binary, one
//! module per command).

mod abuse;
mod adopt;
mod audit_chain;
mod break_glass;
mod check;
mod client_key;
mod code_scan;
mod deprecation;
mod doctor;
mod import;
mod openfeature;
mod permission_matrix;
mod processes;
mod promotion;
mod python;
mod reconcile;
mod roles;
mod serve;
mod shape;
mod site;
mod stale;
mod terminal;

/// The binary under test, built by cargo for this test run.
const VEXIL: &str = env!("CARGO_BIN_EXE_vexil");
