//! vexil-core's integration tests: one binary, one module per feature (ARCHITECTURE.md, invariant 12).

mod audit;
mod decl;
mod decl_roundtrip;
mod deprecation;
mod import;
mod promotion;
mod rbac;
mod resolve;
mod text;
