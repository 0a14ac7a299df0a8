//! vexil-core's integration tests: one binary, one module per feature (STYLE.md rule 7).

mod audit;
mod decl;
mod decl_roundtrip;
mod deprecation;
mod promotion;
mod rbac;
mod resolve;
