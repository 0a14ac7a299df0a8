//! The example flags file (`examples/feature_flags.yaml`, the runbook's twelve flags),
//! as text for a scratch directory and parsed for a use case or the library.

use vexil_core::FlagSet;

/// The example flags file's text.
pub const EXAMPLE_FLAGS: &str = include_str!("../../../examples/feature_flags.yaml");

/// The example flags file, parsed.
pub fn example_flags() -> FlagSet {
    FlagSet::parse("feature_flags.yaml", EXAMPLE_FLAGS.as_bytes())
        .expect("the example flags file is valid")
}
